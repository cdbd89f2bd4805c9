package web

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tandemhq/tandem/proto"
)

// backupName is the name an admin grant must match to take a backup.
const backupName = "system:backup"

// apiBackup serves GET /api/backup: a consistent copy of the whole data
// file, taken in one read transaction while the server keeps serving
// (admin only). Content-Length is the copy's size, so a client can tell a
// complete copy from one cut short by a failure midway (which is logged:
// the status is out by then).
func (s *Server) apiBackup(w http.ResponseWriter, r *http.Request, p principal) error {
	if _, err := s.authorize(p, accessAdmin, backupName); err != nil {
		return err
	}
	if s.cfg.Backup == nil {
		return &requestError{proto.CodeUnavailable, "this server takes no backups"}
	}
	started := false
	n, err := s.cfg.Backup(func(size int64) io.Writer {
		started = true
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Disposition", `attachment; filename="tandem-`+time.Now().UTC().Format("20060102T150405Z")+`.db"`)
		w.WriteHeader(http.StatusOK)
		return w
	})
	if err != nil && started {
		s.log.Error().Err(err).Int64("written", n).Msg("backup cut short")
		return nil
	}
	if err == nil {
		s.log.Info().Int64("bytes", n).Str("by", p.UserID).Msg("backup taken")
	}
	return err
}
