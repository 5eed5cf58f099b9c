//go:build !unix

package main

// restrictFileModes has no umask to set outside Unix.
func restrictFileModes() {}
