// The peer's policy, written the way a Go team would: crypto/x509's Verify
// for the path, CRLs parsed once at start-up into serial sets, and
// certval's two profiles (tenant, device) and tenant rules from the
// fixtures' certval.yaml hard-wired to the fixture file names.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	tenantURIPrefix = "urn:certval:tenant:"
	deviceURIPrefix = "urn:certval:device:"
)

// profile is one certval certificate profile: the CA that issues its
// leaves and what is checked of them.
type profile struct {
	name      string
	kind      uint64
	issuer    *x509.Certificate
	revokeAll bool // revocation: all (every certificate below the anchor), else leaf only
	device    bool // the leaf carries a device id bound to the claimed device
}

// crlSet is one CA's CRL: its revoked serials (big-endian bytes, as a
// string) and nextUpdate.
type crlSet struct {
	revoked    map[string]struct{}
	nextUpdate time.Time
}

// policy is immutable once loaded: goroutines share it without locks.
type policy struct {
	roots         *x509.CertPool
	intermediates []*x509.Certificate
	profiles      []profile
	crls          map[string]*crlSet // by the issuing CA's RawSubject
	tenants       map[string]bool    // configured tenants: device certificate skips the password
	grace         time.Duration      // tolerated past a CRL's nextUpdate (certval's crl_grace_seconds)
	// earliestNextUpdate is the soonest nextUpdate of the CRLs: no cached
	// ALLOW outlives it (plus grace).
	earliestNextUpdate time.Time
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return c, nil
}

// loadPolicy reads the fixture folder written by `certval-fixtures pki`:
// anchors tenant-ca.pem and device-root.pem, intermediate
// device-issuing-ca.pem, and every *.crl (DER), each verified once against
// the CA that signed it.
func loadPolicy(dir string, tenants []string, grace time.Duration) (*policy, error) {
	tenantCA, err := readCert(filepath.Join(dir, "tenant-ca.pem"))
	if err != nil {
		return nil, err
	}
	root, err := readCert(filepath.Join(dir, "device-root.pem"))
	if err != nil {
		return nil, err
	}
	issuing, err := readCert(filepath.Join(dir, "device-issuing-ca.pem"))
	if err != nil {
		return nil, err
	}
	p := &policy{
		roots:         x509.NewCertPool(),
		intermediates: []*x509.Certificate{issuing},
		profiles: []profile{
			{name: "tenant", kind: kindTenant, issuer: tenantCA},
			{name: "device", kind: kindDevice, issuer: issuing, revokeAll: true, device: true},
		},
		crls:    map[string]*crlSet{},
		tenants: map[string]bool{},
		grace:   grace,
	}
	p.roots.AddCert(tenantCA)
	p.roots.AddCert(root)
	for _, t := range tenants {
		p.tenants[t] = true
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.crl"))
	if err != nil {
		return nil, err
	}
	cas := []*x509.Certificate{tenantCA, root, issuing}
	for _, f := range files {
		if err := p.loadCRL(f, cas); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *policy) loadCRL(path string, cas []*x509.Certificate) error {
	der, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	for _, ca := range cas {
		if !bytes.Equal(crl.RawIssuer, ca.RawSubject) {
			continue
		}
		if err := crl.CheckSignatureFrom(ca); err != nil {
			return fmt.Errorf("%s: signature: %v", path, err)
		}
		set := &crlSet{revoked: make(map[string]struct{}, len(crl.RevokedCertificates)),
			nextUpdate: crl.NextUpdate}
		for _, rc := range crl.RevokedCertificates {
			set.revoked[string(rc.SerialNumber.Bytes())] = struct{}{}
		}
		p.crls[string(ca.RawSubject)] = set
		if !crl.NextUpdate.IsZero() &&
			(p.earliestNextUpdate.IsZero() || crl.NextUpdate.Before(p.earliestNextUpdate)) {
			p.earliestNextUpdate = crl.NextUpdate
		}
		return nil
	}
	return fmt.Errorf("%s: no configured CA issued this CRL", path)
}

func deny(v *verdict, reason uint64, format string, args ...interface{}) {
	v.decision = decisionDeny
	v.reason = reason
	v.detail = fmt.Sprintf(format, args...)
}

// validate returns the verdict of one chain at |now|. Safe for concurrent
// use.
func (p *policy) validate(c *chainRequest, now time.Time) verdict {
	v := verdict{id: c.id}
	for _, cl := range []struct {
		name string
		val  []byte
	}{{"tenant_id", c.tenant}, {"device_id", c.device}, {"user_id", c.user}} {
		if msg := claimProblem(cl.name, cl.val); msg != "" {
			deny(&v, reasonMalformed, "%s", msg)
			v.badClaim = true
			return v
		}
	}
	if len(c.certs) == 0 {
		deny(&v, reasonMalformed, "empty chain")
		return v
	}
	if len(c.certs) > maxCertsPerChain {
		deny(&v, reasonMalformed, "%d certificates, over the limit of %d", len(c.certs),
			maxCertsPerChain)
		return v
	}
	leaf, err := x509.ParseCertificate(c.certs[0])
	if err != nil {
		deny(&v, reasonMalformed, "leaf: %v", err)
		return v
	}
	sum := sha256.Sum256(c.certs[0])
	v.leafSHA256 = sum[:]
	v.subject = leaf.Subject.String()
	v.serialHex = hex.EncodeToString(leaf.SerialNumber.Bytes())
	v.notAfter = leaf.NotAfter.Unix()

	pool := x509.NewCertPool()
	for _, ic := range p.intermediates {
		pool.AddCert(ic)
	}
	for i, der := range c.certs[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			deny(&v, reasonMalformed, "certificate %d: %v", i+2, err)
			return v
		}
		pool.AddCert(ic)
	}
	var prof *profile
	for i := range p.profiles {
		if bytes.Equal(leaf.RawIssuer, p.profiles[i].issuer.RawSubject) {
			prof = &p.profiles[i]
			break
		}
	}
	if prof != nil {
		v.kind = prof.kind
		v.profile = prof.name
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         p.roots,
		Intermediates: pool,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		deny(&v, verifyReason(err, now), "%v", err)
		return v
	}
	path := chains[0]
	if prof == nil || len(path) < 2 || !path[1].Equal(prof.issuer) {
		v.kind, v.profile = kindUnspecified, ""
		deny(&v, reasonNoMatchingProfile, "no profile covers issuer %s", leaf.Issuer)
		return v
	}
	if ok := p.checkRevocation(&v, path, prof, now); !ok {
		return v
	}
	p.applyClaims(&v, leaf, prof, c)
	return v
}

// checkRevocation checks the leaf (and, for revocation "all", every
// certificate below the anchor) against its issuer's CRL.
func (p *policy) checkRevocation(v *verdict, path []*x509.Certificate, prof *profile,
	now time.Time) bool {
	n := 1
	if prof.revokeAll {
		n = len(path) - 1
	}
	for i := 0; i < n; i++ {
		set := p.crls[string(path[i+1].RawSubject)]
		if set == nil {
			deny(v, reasonRevocationUnknown, "no CRL for %s", path[i+1].Subject)
			return false
		}
		if !set.nextUpdate.IsZero() && now.After(set.nextUpdate.Add(p.grace)) {
			deny(v, reasonRevocationStale, "the CRL of %s is past its nextUpdate",
				path[i+1].Subject)
			return false
		}
		if _, revoked := set.revoked[string(path[i].SerialNumber.Bytes())]; revoked {
			deny(v, reasonRevoked, "%s is revoked", path[i].Subject)
			return false
		}
	}
	return true
}

// uriWithPrefix returns the rest of the first SAN URI starting with
// |prefix|, and whether there is one.
func uriWithPrefix(c *x509.Certificate, prefix string) (string, bool) {
	for _, u := range c.URIs {
		if s := u.String(); strings.HasPrefix(s, prefix) {
			return s[len(prefix):], true
		}
	}
	return "", false
}

// applyClaims compares the certificate's identities with the claims and
// sets the decision.
func (p *policy) applyClaims(v *verdict, leaf *x509.Certificate, prof *profile,
	c *chainRequest) {
	skips, known := p.tenants[string(c.tenant)]
	if !known {
		deny(v, reasonUnknownTenant, "tenant %q is not configured", c.tenant)
		return
	}
	tenant, ok := uriWithPrefix(leaf, tenantURIPrefix)
	if !ok {
		deny(v, reasonMissingIdentity, "no %s SAN URI", tenantURIPrefix)
		return
	}
	if tenant != string(c.tenant) {
		deny(v, reasonWrongTenant, "certificate of tenant %q, claimed %q", tenant, c.tenant)
		return
	}
	v.reason = reasonOK
	if !prof.device {
		v.decision = decisionRequirePassword
		return
	}
	device, ok := uriWithPrefix(leaf, deviceURIPrefix)
	if !ok {
		deny(v, reasonMissingIdentity, "no %s SAN URI", deviceURIPrefix)
		return
	}
	if device != string(c.device) {
		deny(v, reasonDeviceMismatch, "certificate of device %q, claimed %q", device, c.device)
		return
	}
	if skips {
		v.decision = decisionAllow
	} else {
		v.decision = decisionRequirePassword
	}
}

// verifyReason maps crypto/x509's Verify errors onto certval.v1 reasons.
func verifyReason(err error, now time.Time) uint64 {
	var inv x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	var crit x509.UnhandledCriticalExtension
	var weak x509.InsecureAlgorithmError
	switch {
	case errors.As(err, &inv):
		switch inv.Reason {
		case x509.Expired:
			if inv.Cert != nil && now.Before(inv.Cert.NotBefore) {
				return reasonNotYetValid
			}
			return reasonExpired
		case x509.IncompatibleUsage:
			return reasonExtendedKeyUsage
		case x509.NotAuthorizedToSign:
			return reasonBasicConstraints
		case x509.TooManyIntermediates:
			return reasonPathTooLong
		case x509.CANotAuthorizedForThisName, x509.TooManyConstraints, x509.UnconstrainedName:
			return reasonNameConstraints
		}
		return reasonUntrustedIssuer
	case errors.As(err, &unk):
		return reasonUntrustedIssuer
	case errors.As(err, &crit):
		return reasonUnknownCritical
	case errors.As(err, &weak):
		return reasonWeakAlgorithm
	}
	return reasonInternalError
}
