package cli

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/config"
)

// logSink is where a command's log lines go: the configuration's log_file (opened for append,
// reopened on SIGHUP so that logrotate can move it away) or stderr. On stderr, while a
// progress bar is drawn there, each line goes above the bar (see [progressDisplay.Write]).
type logSink struct {
	mu     sync.Mutex
	stderr io.Writer
	path   string
	file   *os.File
	disp   *progressDisplay
	stop   func() // stops the reopening on SIGHUP
	closed bool
}

// openLogSink opens path (stderr when ""), and has SIGHUP reopen it.
func openLogSink(stderr io.Writer, path string) (*logSink, error) {
	s := &logSink{stderr: stderr, path: path}
	if path == "" {
		return s, nil
	}
	if err := s.reopen(); err != nil {
		return nil, err
	}
	s.reopenOnSIGHUP()
	return s, nil
}

// reopenOnSIGHUP has every SIGHUP reopen the log file, until Close.
func (s *logSink) reopenOnSIGHUP() {
	stderr := s.stderr
	hup, done := make(chan os.Signal, 1), make(chan struct{})
	signal.Notify(hup, syscall.SIGHUP)
	s.stop = sync.OnceFunc(func() {
		signal.Stop(hup)
		close(done)
	})
	go func() {
		for {
			select {
			case <-hup:
				if err := s.reopen(); err != nil {
					fmt.Fprintf(stderr, "pgimaged: %v\n", err)
				}
			case <-done:
				return
			}
		}
	}()
}

// retarget has the log go to path from now on (stderr when ""), as a reload of the
// configuration asks. A file that cannot be opened leaves the log where it went.
func (s *logSink) retarget(path string) error {
	s.mu.Lock()
	if path == s.path {
		s.mu.Unlock()
		return nil
	}
	old, watching := s.path, s.stop != nil
	s.path = path
	s.mu.Unlock()
	if path == "" { // stderr from now on
		s.mu.Lock()
		f := s.file
		s.file = nil
		s.mu.Unlock()
		return closeFile(f)
	}
	if err := s.reopen(); err != nil {
		s.mu.Lock()
		s.path = old
		s.mu.Unlock()
		return err
	}
	if !watching {
		s.reopenOnSIGHUP()
	}
	return nil
}

func (s *logSink) reopen() error {
	s.mu.Lock()
	path := s.path
	s.mu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("while opening the log file: %w", err)
	}
	s.mu.Lock()
	if s.closed { // a SIGHUP as the command ended
		s.mu.Unlock()
		return f.Close()
	}
	old := s.file
	s.file = f
	s.mu.Unlock()
	return closeFile(old)
}

// closeFile closes f unless it is nil; the log goes on elsewhere whatever Close says.
func closeFile(f *os.File) error {
	if f != nil {
		_ = f.Close()
	}
	return nil
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.file != nil:
		return s.file.Write(p)
	case s.disp != nil:
		return s.disp.Write(p)
	}
	return s.stderr.Write(p)
}

// showProgress has log lines written to stderr go above d's bar while d draws; nil ends that.
func (s *logSink) showProgress(d *progressDisplay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disp = d
}

// Close stops reopening on SIGHUP and closes the log file.
func (s *logSink) Close() {
	if s.stop != nil {
		s.stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.file != nil {
		_ = s.file.Close()
		s.file = nil
	}
}

// newLogger is the logger of a command: the level given on the command line, else the
// configuration's; the configuration's log_format and log_file. The log file is closed when
// the command ends; a log file that cannot be opened is said on stderr and stderr used instead.
func newLogger(e *env, cfg *config.Config, override string) hclog.Logger {
	level := override
	if level == "" && cfg != nil {
		level = cfg.LogLevel
	}
	if level == "" {
		level = "info"
	}
	var path string
	json := false
	if cfg != nil {
		path, json = cfg.LogFile, cfg.LogFormat == "json"
	}
	sink, err := openLogSink(e.stderr, path)
	if err != nil {
		fmt.Fprintf(e.stderr, "pgimaged: %v; logging to stderr\n", err)
		sink, _ = openLogSink(e.stderr, "")
	}
	e.sink = sink
	e.closers = append(e.closers, sink.Close)
	return hclog.New(&hclog.LoggerOptions{
		Name: "pgimaged", Output: sink, Level: hclog.LevelFromString(level), JSONFormat: json,
	})
}
