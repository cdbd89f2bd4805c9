package web

import (
	"net/http"

	"github.com/tandemhq/tandem/notify"
)

// WebhookLog is what the HTTP API reads of the webhook dispatcher.
type WebhookLog interface {
	// Deliveries returns the last finished deliveries, newest first.
	Deliveries() []notify.Delivery
}

var _ WebhookLog = (*notify.Dispatcher)(nil)

// webhookLogName is the name an admin grant must match to read the
// delivery log.
const webhookLogName = "system:webhooks"

// apiWebhookDeliveries serves GET /api/webhooks/deliveries?limit=N: the
// delivery log, newest first (admin only).
func (s *Server) apiWebhookDeliveries(w http.ResponseWriter, r *http.Request, p principal) error {
	if _, err := s.authorize(p, accessAdmin, webhookLogName); err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 0)
	if err != nil {
		return err
	}
	list := []notify.Delivery{}
	if s.cfg.Webhooks != nil {
		list = s.cfg.Webhooks.Deliveries()
	}
	if limit > 0 && len(list) > limit {
		list = list[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": list})
	return nil
}
