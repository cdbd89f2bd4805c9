package client

import "sync"

// dispatcher runs the user's callbacks, one at a time and in the order they
// were queued, on its own goroutine. The read goroutine only queues, so a
// slow callback never stalls the connection (and never gets it closed as a
// slow reader), and a callback may call any client method, including ones
// that wait for a reply, without deadlocking the reader. The queue is
// unbounded: memory, not the connection, absorbs a slow callback.
type dispatcher struct {
	mu      sync.Mutex // guards queue and stopped
	queue   []func()
	stopped bool

	wake chan struct{} // cap 1: queue or stopped changed
	done chan struct{} // closed when run returns
}

func newDispatcher() *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.run()
	return d
}

// push queues f. After stop it does nothing.
func (d *dispatcher) push(f func()) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, f)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// stop lets the dispatcher run what is queued, then end, and waits for it.
// It must not be called from a callback.
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.done
}

func (d *dispatcher) run() {
	defer close(d.done)
	var batch []func()
	for range d.wake {
		d.mu.Lock()
		batch, d.queue = d.queue, batch[:0]
		stopped := d.stopped
		d.mu.Unlock()
		for i, f := range batch {
			f()
			batch[i] = nil // let the closure's data go
		}
		if stopped {
			d.mu.Lock()
			empty := len(d.queue) == 0
			d.mu.Unlock()
			if empty {
				return
			}
			select { // more was queued before stop: go round again
			case d.wake <- struct{}{}:
			default:
			}
		}
	}
}
