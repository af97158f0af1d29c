// goproxy: the Go baseline for the cors-proxy benchmark.
//
// httputil.ReverseProxy wrapped in github.com/rs/cors (Debian's
// golang-github-rs-cors-dev, 1.7.0), with the same CORS rules as
// bench/proxy.conf and bench/nginx-proxy.conf.tmpl. Built offline against
// /usr/share/gocode (GOPATH mode, no module downloads) by bench/run.sh.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/rs/cors"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18083", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:18080", "upstream URL")
	strip := flag.Bool("strip-upstream-cors", true,
		"remove the upstream's own Access-Control-* response headers (rs/cors does not; without this a CORS header sent by the upstream is duplicated)")
	preflight204 := flag.Bool("preflight-204", true,
		"answer allowed preflights 204 like nginx and cors-proxy (rs/cors 1.7 answers 200)")
	flag.Parse()

	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	rp.ErrorLog = log.New(log.Writer(), "goproxy: ", log.LstdFlags)
	if *strip {
		rp.ModifyResponse = func(resp *http.Response) error {
			for name := range resp.Header {
				if strings.HasPrefix(name, "Access-Control-") {
					resp.Header.Del(name)
				}
			}
			return nil
		}
	}

	var next http.Handler = rp
	if *preflight204 {
		next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			rp.ServeHTTP(w, r)
		})
	}
	c := cors.New(cors.Options{
		AllowedOrigins:     []string{"https://app.example.com", "https://admin.example.com", "http://localhost:5173"},
		AllowedMethods:     []string{"GET", "HEAD", "POST", "PUT", "DELETE"},
		AllowedHeaders:     []string{"Content-Type", "Authorization", "X-Custom"},
		ExposedHeaders:     []string{"X-Request-Id"},
		AllowCredentials:   true,
		MaxAge:             600,
		OptionsPassthrough: *preflight204,
	})
	srv := &http.Server{
		Addr:              *listen,
		Handler:           c.Handler(next),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("goproxy listening on %s -> %s", *listen, *upstream)
	log.Fatal(srv.Serve(ln))
}
