//go:build unix

package main

import "syscall"

// restrictFileModes makes every file and directory the process creates
// (the store's files, its data directory) private to the origin's user:
// 0600 and 0700.
func restrictFileModes() { syscall.Umask(0o077) }
