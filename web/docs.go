package web

import (
	"fmt"

	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// docChannel is the channel a document's grants name.
func docChannel(id string) string { return "doc:" + id }

// docClient is this connection as document doc sees it; its errors name
// the document.
func (c *conn) docClient(doc string) session.DocClient {
	c.idMu.Lock()
	user := c.user
	c.idMu.Unlock()
	return session.DocClient{Sub: c, User: user, Fail: func(id *int64, err error) { c.sendErrorAbout(id, "", doc, err) }}
}

// checkDoc validates a document request: a valid id, access a (authorize),
// and (unless opening) the document open on this connection.
func (c *conn) checkDoc(req *proto.Request, a access, mustBeOpen bool) (verdict, error) {
	if c.srv.cfg.Docs == nil {
		return verdict{}, &requestError{proto.CodeUnavailable, "this server serves no documents"}
	}
	v, err := c.srv.authorize(c.principal(), a, req.Doc)
	if err != nil {
		return v, err
	}
	if _, open := c.docs[req.Doc]; mustBeOpen && !open {
		return v, badRequest(fmt.Sprintf("document %q is not open on this connection: open it first", req.Doc))
	}
	return v, nil
}

func (c *conn) handleOpen(req *proto.Request) error {
	if _, err := c.checkDoc(req, accessDocRead, false); err != nil {
		return err
	}
	if _, again := c.docs[req.Doc]; !again && len(c.docs) >= c.srv.cfg.MaxSubscriptions {
		return badRequest(fmt.Sprintf("at most %d open documents per connection", c.srv.cfg.MaxSubscriptions))
	}
	if req.Version != nil && *req.Version < 0 {
		return badRequest("version must not be negative")
	}
	if c.hooked != nil {
		c.idMu.Lock()
		user := c.user
		c.idMu.Unlock()
		if err := c.srv.docHooks(c.hookCtx(), req.Doc, hookUser(user), true, c.id); err != nil {
			return err
		}
	}
	_, err := c.srv.authorize(c.principal(), accessDocWrite, req.Doc)
	create := err == nil
	c.docs[req.Doc] = struct{}{}
	c.srv.cfg.Docs.Open(c.docClient(req.Doc), req.ID, req.Doc, req.Version, req.Epoch, create)
	return nil
}

func (c *conn) handleCloseDoc(req *proto.Request) error {
	if err := session.ValidDocID(req.Doc); err != nil {
		return badRequest(err.Error())
	}
	if _, open := c.docs[req.Doc]; !open {
		if req.ID != nil {
			c.send(proto.Closed{ID: req.ID, Type: proto.TypeClosed, Doc: req.Doc})
		}
		return nil
	}
	delete(c.docs, req.Doc)
	c.srv.cfg.Docs.CloseDoc(c.docClient(req.Doc), req.ID, req.Doc)
	return nil
}

func (c *conn) handleOp(req *proto.Request) error {
	if _, err := c.checkDoc(req, accessDocWrite, true); err != nil {
		return err
	}
	switch {
	case req.Version == nil:
		return badRequest("op needs the version it was made against")
	case *req.Version < 0:
		return badRequest("version must not be negative")
	case req.Op == nil:
		return badRequest("op needs an op")
	case req.UID == "":
		return badRequest("op needs a uid")
	}
	c.srv.cfg.Docs.Submit(c.docClient(req.Doc), req.ID, req.Doc, *req.Version, req.Op, req.UID)
	return nil
}

func (c *conn) handleCursor(req *proto.Request) error {
	if _, err := c.checkDoc(req, accessDocRead, true); err != nil {
		return err
	}
	if req.Version == nil || *req.Version < 0 {
		return badRequest("cursor needs a non-negative version")
	}
	c.srv.cfg.Docs.Cursor(c.docClient(req.Doc), req.ID, req.Doc, *req.Version, req.Ranges)
	return nil
}

func (c *conn) handleComment(req *proto.Request) error {
	v, err := c.checkDoc(req, accessDocComment, true)
	if err != nil {
		return err
	}
	cr := session.CommentRequest{Action: req.Action, CommentID: req.CommentID, Range: req.Range, Text: req.Text, Parent: req.Parent}
	if req.Action == "add" {
		if req.Version == nil {
			return badRequest("adding a comment needs the version its range was made against")
		}
		cr.Version = *req.Version
	} else if req.CommentID == "" {
		return badRequest(req.Action + " needs comment_id")
	}
	c.srv.cfg.Docs.Comment(c.docClient(req.Doc), req.ID, req.Doc, cr, v.admin)
	return nil
}
