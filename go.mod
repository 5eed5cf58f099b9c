module github.com/sessionedge/sessionedge

go 1.26
