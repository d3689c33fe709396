package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// rel returns path relative to the watched directory, slash-separated; it
// fails for the directory itself and paths outside it.
func (w *Watcher) rel(path string) (string, bool) {
	if path == "" {
		return "", false
	}
	r, err := filepath.Rel(w.dir, path)
	if err != nil || r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// addTree watches root and the directories under it. found, when set, is
// told of every file and directory under root. Directories that cannot be
// watched (the watch limit is reached, permissions) are recorded as one
// lost-events event per call.
func (w *Watcher) addTree(root string, found func(path string, dir bool)) {
	failed, firstErr := 0, error(nil)
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root || !errors.Is(err, fs.ErrNotExist) {
				w.log.Warn("watch: walk", "path", path, "err", err)
			}
			return nil
		}
		if path != root && found != nil {
			found(path, d.IsDir())
		}
		if !d.IsDir() || w.dirs[path] && path != root {
			return nil
		}
		if err := w.fs.Add(path); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				if failed++; firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", path, err)
				}
			}
			return fs.SkipDir
		}
		w.dirs[path] = true
		return nil
	})
	if failed > 0 {
		w.lost(context.Background(), fmt.Sprintf("cannot watch %d directories, file events under them are not recorded: %v", failed, firstErr))
	}
}

// forgetTree drops the watches of root and the directories under it, which
// were removed or moved away.
func (w *Watcher) forgetTree(root string) {
	prefix := root + string(filepath.Separator)
	for d := range w.dirs {
		if d == root || strings.HasPrefix(d, prefix) {
			delete(w.dirs, d)
			w.fs.Remove(d) // already gone with the directory, usually
		}
	}
}

// renamedFrom returns the old path of a create that is the arrival side of
// a rename inside the watched tree. fsnotify keeps it unexported and shows
// it only in Event.String, as `OP "new" ← "old"`.
func renamedFrom(ev fsnotify.Event) string {
	s := ev.String()
	prefix := fmt.Sprintf("%-13s %q ← ", ev.Op.String(), ev.Name)
	if !strings.HasPrefix(s, prefix) {
		return ""
	}
	old, err := strconv.Unquote(s[len(prefix):])
	if err != nil {
		return ""
	}
	return old
}
