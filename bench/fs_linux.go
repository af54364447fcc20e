package bench

import (
	"fmt"
	"syscall"
)

// FSType names the file system holding dir, so that a report shows
// whether its fsyncs reach a disk (tmpfs would make them free).
func FSType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "?"
	}
	switch st.Type {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs (fsync costs nothing: not a durable figure)"
	case 0x794C7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system type %#x", st.Type)
}
