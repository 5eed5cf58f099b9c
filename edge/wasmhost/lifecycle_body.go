package wasmhost

import (
	"io"
	"sync"
)

// bodyFilter reads a body from src and, with filter set, passes it through
// the plugin's body callback as it arrives: each read goes to the plugin
// with the bytes it still holds; what it lets through (Continue) is read
// out, what it holds (Pause before the end of the stream) stays buffered, up
// to max bytes. Without filter the body passes as it is.
type bodyFilter struct {
	x        *Exchange
	response bool
	src      io.Reader
	filter   bool
	max      int
	// passOnFail lets the rest of the body through unfiltered when the
	// plugin fails: failing open once the headers have left. Before that a
	// failure stops the body and the failure policy applies to the whole
	// message.
	passOnFail bool

	held bool   // the plugin holds acc
	acc  []byte // bytes read and not let through yet (as read)
	out  []byte // bytes let through, not read out yet
	eof  bool   // src is exhausted and the plugin saw the end of the stream

	verdict  Verdict // LocalReply or Reset, decided by a body callback
	tooLarge bool    // the plugin held more than max bytes
	failErr  error   // the plugin failed
	err      error   // what ended the body early

	// Request trailers: read from trailer into trailers at the end of the body.
	trailer  HeaderSource
	trailers *HeaderMap

	// mu and done keep the plugin from running on the request body once the
	// exchange moved on to the response: the upstream may read the request
	// body on a goroutine of its own.
	mu   sync.Mutex
	done bool
}

func (b *bodyFilter) init(x *Exchange, src io.Reader, response, filter bool, max int) {
	acc := b.acc[:0]
	b.reset()
	b.x, b.src, b.response, b.filter, b.max, b.acc = x, src, response, filter, max, acc
}

func (b *bodyFilter) reset() {
	acc := b.acc
	if cap(acc) > keepBuffer {
		acc = nil
	}
	*b = bodyFilter{acc: acc[:0]}
}

// stop ends the body with err.
func (b *bodyFilter) stop(err error) error {
	b.err = err
	return err
}

// Read reads the body: what the plugin let through, or the source as it is.
func (b *bodyFilter) Read(p []byte) (int, error) {
	for {
		if len(b.out) > 0 {
			n := copy(p, b.out)
			b.out = b.out[n:]
			return n, nil
		}
		if b.eof {
			return 0, io.EOF
		}
		if b.err != nil {
			return 0, b.err
		}
		if !b.filter {
			n, err := b.src.Read(p)
			switch {
			case err == io.EOF:
				b.eof = true
				b.readTrailers()
			case err != nil:
				b.err = err
			}
			return n, err
		}
		if err := b.step(); err != nil {
			return 0, err
		}
	}
}

// readWhole reads the n bytes of a body of known length and gives them to
// the plugin in one call with the end of the stream.
func (b *bodyFilter) readWhole(n int) error {
	if cap(b.acc) < n {
		b.acc = make([]byte, 0, n)
	}
	b.acc = b.acc[:n]
	if _, err := io.ReadFull(b.src, b.acc); err != nil {
		return b.stop(err)
	}
	b.closeSource()
	return b.deliver(true, false)
}

// step reads once from the source and runs the body callback.
func (b *bodyFilter) step() error {
	if b.held {
		if vd, ok := b.x.st.Release(); ok {
			if vd != Continue {
				b.verdict = vd
				return b.stop(errBodyAnswered)
			}
			b.letThrough()
			return nil
		}
	}
	if cap(b.acc)-len(b.acc) < chunkSize {
		acc := make([]byte, len(b.acc), 2*cap(b.acc)+chunkSize)
		copy(acc, b.acc)
		b.acc = acc
	}
	n, err := b.src.Read(b.acc[len(b.acc) : len(b.acc)+chunkSize])
	b.acc = b.acc[:len(b.acc)+n]
	if err != nil && err != io.EOF {
		return b.stop(err)
	}
	eos := err == io.EOF
	if n == 0 && !eos {
		return nil
	}
	trailers := eos && b.readTrailers()
	return b.deliver(eos, trailers)
}

// readTrailers fills the trailers at the end of a request body and reports
// whether there are any. Unfiltered trailers lose the names the plugin owns.
func (b *bodyFilter) readTrailers() bool {
	if b.trailer == nil {
		return false
	}
	b.trailers.Reset()
	_ = b.trailer.AddHeaders(b.trailers) // what fits the map
	if !b.filter {
		b.x.l.strip(b.trailers)
	}
	return b.trailers.Len() > 0
}

// deliver gives the plugin the bytes it holds plus those just read, then
// the trailers, and applies its verdict.
func (b *bodyFilter) deliver(eos, trailers bool) error {
	st, ctx := b.x.st, b.x.ctx
	bodyEOS := eos && !trailers
	vd := Continue
	var err error
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return b.stop(errBodyDone)
	}
	switch {
	case len(b.acc) == 0 && !bodyEOS:
		if b.held {
			vd = Buffer
		}
	case b.response:
		vd, err = st.OnResponseBody(ctx, b.acc, bodyEOS)
	default:
		vd, err = st.OnRequestBody(ctx, b.acc, bodyEOS)
	}
	if err == nil && trailers && (vd == Continue || vd == Buffer) {
		var tv Verdict
		if tv, err = st.OnRequestTrailers(ctx); err == nil {
			vd = tv // the trailers end the stream: what the plugin held goes on
		}
	}
	b.mu.Unlock()
	switch {
	case err != nil:
		b.failErr = err
		if !b.passOnFail {
			return b.stop(err)
		}
		// Failing open after the headers left: what the plugin held and the
		// rest of the body go on as they are.
		b.filter, b.held = false, false
		b.out, b.acc = b.acc, nil
		if eos {
			b.eof = true
			if b.trailers != nil {
				b.x.l.strip(b.trailers)
			}
		}
		return nil
	case vd == LocalReply || vd == Reset:
		b.verdict = vd
		return b.stop(errBodyAnswered)
	case vd == Buffer:
		b.held = true
		if len(b.acc) > b.max {
			b.tooLarge = true
			return b.stop(errBodyTooLarge)
		}
		return nil
	}
	b.letThrough()
	b.eof = eos
	return nil
}

// letThrough moves what the plugin let through (the body as it left it) to
// the output.
func (b *bodyFilter) letThrough() {
	b.held = false
	if b.response {
		b.out = b.x.st.ResponseBody()
	} else {
		b.out = b.x.st.RequestBody()
	}
	b.acc = b.acc[:0]
}

// closeSource closes a source the filter read to the end early.
func (b *bodyFilter) closeSource() {
	if b.response {
		b.x.closeUpstreamBody()
		b.src = eofReader{}
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
