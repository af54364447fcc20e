// Package appname judges the name a client gives itself, which nobody
// checked, before a page shows it: whether it passes for the name of an
// application the administrator registered (Reserved.Taken), and whether
// it mixes alphabets as names made to look like another do
// (MixedScripts). The consent page and the console's lists both warn with
// it (SEC-126).
package appname
