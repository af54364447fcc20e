// Package privatedir makes the directories that hold the gateway's own
// files (the database, the key file, the stdio servers' homes) one way:
// the directories themselves readable by the gateway alone, the parents
// made for them searchable by everyone but readable by no one else. It
// also refuses the places no such file may be: a directory every user may
// write to, a symbolic link or another user's file where the file goes.
package privatedir
