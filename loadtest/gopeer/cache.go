// The optional verdict cache: SHA-256 of the chain's DER certificates, the
// claimed tenant and the claimed device -> verdict, bounded in entries,
// sharded to keep lock contention low, oldest entry of a shard evicted
// first. The peer's CRLs never change while it runs, so an entry stays
// right until the leaf's notAfter, the CRLs' nextUpdate or the TTL.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

const cacheShards = 64

type cacheKey [sha256.Size]byte

type cacheEntry struct {
	v       verdict // id is not part of the entry: each hit sets its own
	expires time.Time
}

type cacheShard struct {
	mu   sync.RWMutex
	m    map[cacheKey]cacheEntry
	ring []cacheKey // insertion order, for eviction
	next int        // the ring slot written next (the oldest once the ring is full)
}

type verdictCache struct {
	shards [cacheShards]cacheShard
	ttl    time.Duration
}

// newVerdictCache returns a cache of at most |entries| verdicts (rounded
// up to a multiple of the shard count).
func newVerdictCache(entries int, ttl time.Duration) *verdictCache {
	per := (entries + cacheShards - 1) / cacheShards
	if per < 1 {
		per = 1
	}
	c := &verdictCache{ttl: ttl}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheEntry, per)
		c.shards[i].ring = make([]cacheKey, 0, per)
	}
	return c
}

// key hashes the certificates and claims, each with its length, so that
// no two different inputs hash the same bytes.
func (c *verdictCache) key(r *chainRequest) cacheKey {
	h := sha256.New()
	var n [4]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	binary.BigEndian.PutUint32(n[:], uint32(len(r.certs)))
	h.Write(n[:])
	for _, der := range r.certs {
		put(der)
	}
	put(r.tenant)
	put(r.device)
	var k cacheKey
	h.Sum(k[:0])
	return k
}

func (c *verdictCache) get(k cacheKey, now time.Time) (verdict, bool) {
	s := &c.shards[k[0]%cacheShards]
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return verdict{}, false
	}
	return e.v, true
}

// put remembers |v| until |expires| (at most the TTL from |now|).
func (c *verdictCache) put(k cacheKey, v verdict, now, expires time.Time) {
	if lim := now.Add(c.ttl); expires.IsZero() || expires.After(lim) {
		expires = lim
	}
	v.id = 0
	s := &c.shards[k[0]%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok {
		s.m[k] = cacheEntry{v: v, expires: expires}
		return
	}
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, k)
	} else {
		delete(s.m, s.ring[s.next])
		s.ring[s.next] = k
		s.next = (s.next + 1) % len(s.ring)
	}
	s.m[k] = cacheEntry{v: v, expires: expires}
}
