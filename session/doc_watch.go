package session

// DocWatcher hears of every document version that becomes durable: the
// application's doc_store hook (package hooks) keeps its own copy of each
// document from it. Session does not import hooks; the server passes the
// hooks' Caller, which implements this, as DocsConfig.Watcher.
type DocWatcher interface {
	// DocChanged says that document doc reached version (ops [0, version)
	// are durable) in incarnation epoch. It is called from the document's
	// goroutine, in version order, and must not block or call back into
	// the documents.
	DocChanged(doc string, version int, epoch string)
}

// watch tells the watcher, if there is one, that the document reached
// version: called once op version-1 is durable.
func (s *docSession) watch(version int) {
	if w := s.docs.cfg.Watcher; w != nil {
		w.DocChanged(s.id, version, s.epoch)
	}
}
