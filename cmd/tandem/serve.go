package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/server"
)

// serveFlags parses `tandem serve`'s flags and environment into a config.
type serveFlags struct {
	Config server.Config
}

// ParseFlags fills m.Config from args and the environment.
func (m *serveFlags) ParseFlags(args []string, stderr io.Writer) error {
	c := &m.Config
	if v := os.Getenv("TANDEM_ADDR"); v != "" {
		c.Addr = v
	}
	if v := os.Getenv("TANDEM_DATA"); v != "" {
		c.Data = v
	}
	c.NATSURL = os.Getenv("TANDEM_NATS_URL")
	c.Node = os.Getenv("TANDEM_NODE")
	c.JWTSecret = os.Getenv("TANDEM_JWT_SECRET")
	c.JWKSURL = os.Getenv("TANDEM_JWKS_URL")
	if v := os.Getenv("TANDEM_API_KEYS"); v != "" {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				c.APIKeys = append(c.APIKeys, k)
			}
		}
	}
	fs := flag.NewFlagSet("tandem serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address ($TANDEM_ADDR)")
	fs.StringVar(&c.Data, "data", c.Data, "data directory ($TANDEM_DATA)")
	configFile := fs.String("config", "", "JSON config file for namespaces and limits")
	fs.BoolVar(&c.NoSync, "nosync", false, "skip fsync (UNSAFE: loses acked data on a crash; benchmarks only)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.BoolVar(&c.LogJSON, "log-json", false, "JSON logs even in development mode")
	fs.StringVar(&c.NATSURL, "nats", c.NATSURL, "run as a cluster node on NATS JetStream at this URL, or several comma-separated ($TANDEM_NATS_URL); --data is then not used")
	fs.StringVar(&c.Node, "node", c.Node, "this node's name in the cluster; default: host name and a random suffix ($TANDEM_NODE)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tandem serve [flags]\n\nRuns the server. Without $TANDEM_JWT_SECRET or $TANDEM_JWKS_URL it runs in development mode.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %v: %w", fs.Args(), errUsage)
	}
	dataFlag := false
	fs.Visit(func(f *flag.Flag) { dataFlag = dataFlag || f.Name == "data" })
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.File); err != nil {
			return fmt.Errorf("config %s: %w", *configFile, err)
		}
	}
	if dataFlag && c.Cluster() {
		return fmt.Errorf("serve: --data with a NATS URL: a cluster node keeps no data of its own (move a data file into the cluster with tandem migrate, see docs/cluster.md)")
	}
	return nil
}

// logger builds the process logger.
func (m *serveFlags) logger(stderr io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(m.Config.LogLevel)
	if err != nil || m.Config.LogLevel == "" {
		level = zerolog.InfoLevel
	}
	var w io.Writer = stderr
	if !m.Config.Production() && !m.Config.LogJSON {
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// runServe is `tandem serve`.
func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	f := &serveFlags{Config: server.DefaultConfig()}
	if err := f.ParseFlags(args, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	server.Version = Version
	stopProfile, err := startProfiles()
	if err != nil {
		return err
	}
	defer stopProfile()
	zerolog.TimeFieldFormat = time.RFC3339Nano
	m := server.New(f.Config, f.logger(stderr))
	if err := m.Run(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		m.Log.Info().Msg("shutting down")
	case err := <-m.Done():
		m.Log.Error().Err(err).Msg("http server stopped")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = m.Close(shutdownCtx)
	if err == nil {
		m.Log.Info().Msg("stopped")
	}
	return err
}
