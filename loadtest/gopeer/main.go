// certval-gopeer: the Go peer of issue 15, a straightforward Go service
// that answers certval's own API (certval.v1.Validator/Validate and
// ValidateStream) on grpc-go, with crypto/x509's Verify, CRLs parsed once
// into serial sets and an optional verdict cache. It exists to measure
// certval against; it is not part of certval (docs/benchmarks.md).
//
//	certval-gopeer --fixtures DIR [--listen 127.0.0.1:0] [--port-file FILE]
//	               [--tenants acme] [--cache] [--cache-entries N] [--cache-ttl D]
//	               [--crl-grace D]
//
// DIR is a folder written by `certval-fixtures pki`. SIGTERM or SIGINT:
// health turns NOT_SERVING, calls in flight finish (at most 5 s), exit 0.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// peer is the service: an immutable policy and an optional cache.
type peer struct {
	pol   *policy
	cache *verdictCache // nil = no cache
}

// parallelMin is the batch size from which a call's chains are spread over
// GOMAXPROCS goroutines; smaller batches run on the call's own goroutine.
const parallelMin = 16

// validateBatch returns one verdict per chain, in order.
func (p *peer) validateBatch(chains []chainRequest) []verdict {
	out := make([]verdict, len(chains))
	now := time.Now()
	workers := runtime.GOMAXPROCS(0)
	if len(chains) < parallelMin || workers < 2 {
		for i := range chains {
			out[i] = p.validateOne(&chains[i], now)
		}
		return out
	}
	per := (len(chains) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(chains); lo += per {
		hi := lo + per
		if hi > len(chains) {
			hi = len(chains)
		}
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				out[i] = p.validateOne(&chains[i], now)
			}
		}(lo, hi)
	}
	wg.Wait()
	return out
}

// cacheable tells whether a verdict may be remembered: not those that
// time alone can change before the entry's expiry (not yet valid, CRL
// stale or missing) nor a claim that is not text (as certval).
func cacheable(v *verdict) bool {
	switch v.reason {
	case reasonNotYetValid, reasonRevocationStale, reasonRevocationUnknown, reasonInternalError:
		return false
	}
	return !v.badClaim
}

func (p *peer) validateOne(c *chainRequest, now time.Time) verdict {
	if p.cache == nil {
		return p.pol.validate(c, now)
	}
	k := p.cache.key(c)
	if v, ok := p.cache.get(k, now); ok {
		v.id = c.id
		return v
	}
	v := p.pol.validate(c, now)
	if cacheable(&v) {
		var exp time.Time
		if v.decision != decisionDeny {
			exp = time.Unix(v.notAfter, 0)
			if !p.pol.earliestNextUpdate.IsZero() &&
				p.pol.earliestNextUpdate.Add(p.pol.grace).Before(exp) {
				exp = p.pol.earliestNextUpdate.Add(p.pol.grace)
			}
		}
		p.cache.put(k, v, now, exp)
	}
	return v
}

func writePortFile(path string, port int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func main() {
	fixtures := flag.String("fixtures", "", "fixture folder written by certval-fixtures pki")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	portFile := flag.String("port-file", "", "write the port served on to this file")
	tenants := flag.String("tenants", "acme", "configured tenants, comma-separated "+
		"(their device certificates skip the password, as in the fixtures' certval.yaml)")
	useCache := flag.Bool("cache", false, "remember verdicts (SHA-256 of chain + tenant + device)")
	cacheEntries := flag.Int("cache-entries", 200000, "verdict cache bound, in entries")
	cacheTTL := flag.Duration("cache-ttl", 10*time.Minute, "longest a verdict is remembered")
	grace := flag.Duration("crl-grace", time.Hour, "tolerated past a CRL's nextUpdate")
	flag.Parse()
	if *fixtures == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: certval-gopeer --fixtures DIR [--listen ADDR] "+
			"[--port-file FILE] [--tenants T,...] [--cache] [--cache-entries N]")
		os.Exit(2)
	}
	pol, err := loadPolicy(*fixtures, strings.Split(*tenants, ","), *grace)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certval-gopeer:", err)
		os.Exit(1)
	}
	p := &peer{pol: pol}
	if *useCache {
		p.cache = newVerdictCache(*cacheEntries, *cacheTTL)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certval-gopeer:", err)
		os.Exit(1)
	}
	srv := grpc.NewServer(grpc.CustomCodec(newRawCodec()))
	srv.RegisterService(&validatorDesc, p)
	hs := health.NewServer()
	hs.SetServingStatus(serviceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		hs.Shutdown()
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			srv.Stop()
		}
	}()

	port := lis.Addr().(*net.TCPAddr).Port
	if *portFile != "" {
		if err := writePortFile(*portFile, port); err != nil {
			fmt.Fprintln(os.Stderr, "certval-gopeer:", err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "certval-gopeer: serving on %s, GOMAXPROCS %d, %d CRLs, cache %v\n",
		lis.Addr(), runtime.GOMAXPROCS(0), len(pol.crls), p.cache != nil)
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "certval-gopeer:", err)
		os.Exit(1)
	}
}
