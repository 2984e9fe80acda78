// certval.v1 messages decoded and encoded by hand with protowire (no
// generated code), the gRPC codec that hands them over as raw bytes, and
// the service descriptor of certval.v1.Validator registered by hand.
// Field numbers are those of proto/certval/v1/certval.proto.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // the codec the health service needs
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// Decision, Reason and CertificateKind values of certval.v1.
const (
	decisionAllow           = 1
	decisionRequirePassword = 2
	decisionDeny            = 3
	kindUnspecified         = 0
	kindTenant              = 1
	kindDevice              = 2
	reasonOK                = 1
	reasonMalformed         = 2
	reasonUntrustedIssuer   = 3
	reasonBadSignature      = 4
	reasonExpired           = 5
	reasonNotYetValid       = 6
	reasonRevoked           = 7
	reasonRevocationUnknown = 8
	reasonRevocationStale   = 9
	reasonExtendedKeyUsage  = 11
	reasonBasicConstraints  = 12
	reasonNameConstraints   = 13
	reasonUnknownCritical   = 15
	reasonPathTooLong       = 16
	reasonWrongTenant       = 17
	reasonDeviceMismatch    = 18
	reasonNoMatchingProfile = 20
	reasonUnknownTenant     = 21
	reasonMissingIdentity   = 22
	reasonInternalError     = 24
	reasonWeakAlgorithm     = 26
	maxChainsPerBatch       = 4096 // limits.max_chains_per_batch of the fixtures' certval.yaml
	maxCertsPerChain        = 8    // certval's limits.max_certs_per_chain default
	serviceName             = "certval.v1.Validator"
)

// chainRequest is one ChainRequest; the slices point into the received
// message, which grpc-go allocates per message and never reuses.
type chainRequest struct {
	id     uint64
	certs  [][]byte
	tenant []byte
	device []byte
	user   []byte
}

// verdict is one Verdict.
type verdict struct {
	id         uint64
	decision   uint64
	reason     uint64
	kind       uint64
	detail     string
	leafSHA256 []byte
	subject    string
	serialHex  string
	notAfter   int64
	profile    string
	badClaim   bool // a claim is not text: never cached (not on the wire)
}

var errBadMessage = errors.New("not a certval.v1.ValidateRequest")

// decodeRequest parses a ValidateRequest.
func decodeRequest(b []byte) ([]chainRequest, error) {
	var out []chainRequest
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errBadMessage
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, errBadMessage
			}
			if len(out) == maxChainsPerBatch {
				return nil, status.Errorf(codes.ResourceExhausted,
					"more than %d chains in one request", maxChainsPerBatch)
			}
			c, err := decodeChain(v)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, errBadMessage
		}
		b = b[m:]
	}
	return out, nil
}

func decodeChain(b []byte) (chainRequest, error) {
	var c chainRequest
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return c, errBadMessage
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return c, errBadMessage
			}
			c.id = v
			b = b[m:]
		case num >= 2 && num <= 5 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return c, errBadMessage
			}
			switch num {
			case 2:
				c.certs = append(c.certs, v)
			case 3:
				c.tenant = v
			case 4:
				c.device = v
			case 5:
				c.user = v
			}
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return c, errBadMessage
			}
			b = b[m:]
		}
	}
	return c, nil
}

// claimProblem says why a claim is not text (certval's rule: valid UTF-8
// without NUL), or "" when it is.
func claimProblem(name string, v []byte) string {
	for i, ch := range v {
		if ch == 0 {
			return fmt.Sprintf("%s holds a NUL byte (byte %d of %d)", name, i, len(v))
		}
	}
	if !utf8.Valid(v) {
		return fmt.Sprintf("%s is not valid UTF-8", name)
	}
	return ""
}

// appendVerdict appends one Verdict (proto3: zero values are left out).
func appendVerdict(b []byte, v *verdict) []byte {
	var tmp [512]byte
	m := tmp[:0]
	if v.id != 0 {
		m = protowire.AppendTag(m, 1, protowire.VarintType)
		m = protowire.AppendVarint(m, v.id)
	}
	m = protowire.AppendTag(m, 2, protowire.VarintType)
	m = protowire.AppendVarint(m, v.decision)
	m = protowire.AppendTag(m, 3, protowire.VarintType)
	m = protowire.AppendVarint(m, v.reason)
	if v.kind != 0 {
		m = protowire.AppendTag(m, 4, protowire.VarintType)
		m = protowire.AppendVarint(m, v.kind)
	}
	m = appendString(m, 5, v.detail)
	if len(v.leafSHA256) > 0 {
		m = protowire.AppendTag(m, 6, protowire.BytesType)
		m = protowire.AppendBytes(m, v.leafSHA256)
	}
	m = appendString(m, 7, v.subject)
	m = appendString(m, 8, v.serialHex)
	if v.notAfter != 0 {
		m = protowire.AppendTag(m, 9, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(v.notAfter))
	}
	m = appendString(m, 10, v.profile)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// encodeResponse encodes a ValidateResponse of |vs|.
func encodeResponse(vs []verdict) []byte {
	b := make([]byte, 0, 160*len(vs)+16)
	for i := range vs {
		b = appendVerdict(b, &vs[i])
	}
	return b
}

// rawMsg carries a message's bytes through gRPC untouched.
type rawMsg struct{ b []byte }

// rawCodec passes *rawMsg through as bytes and hands every other message
// (the health service's) to grpc-go's proto codec.
type rawCodec struct{ proto encoding.Codec }

func (c rawCodec) Marshal(v interface{}) ([]byte, error) {
	if m, ok := v.(*rawMsg); ok {
		return m.b, nil
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data []byte, v interface{}) error {
	if m, ok := v.(*rawMsg); ok {
		m.b = data
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

func (c rawCodec) String() string { return "proto" }

func newRawCodec() rawCodec { return rawCodec{proto: encoding.GetCodec("proto")} }

// validatorDesc is certval.v1.Validator, by hand.
var validatorDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*interface{})(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Validate",
		Handler:    validateHandler,
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "ValidateStream",
		Handler:       validateStreamHandler,
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "certval/v1/certval.proto",
}

func validateHandler(srv interface{}, ctx context.Context, dec func(interface{}) error,
	_ grpc.UnaryServerInterceptor) (interface{}, error) {
	var in rawMsg
	if err := dec(&in); err != nil {
		return nil, err
	}
	out, err := srv.(*peer).answer(in.b)
	if err != nil {
		return nil, err
	}
	return &rawMsg{b: out}, nil
}

func validateStreamHandler(srv interface{}, stream grpc.ServerStream) error {
	p := srv.(*peer)
	for {
		var in rawMsg
		if err := stream.RecvMsg(&in); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		out, err := p.answer(in.b)
		if err != nil {
			return err
		}
		if err := stream.SendMsg(&rawMsg{b: out}); err != nil {
			return err
		}
	}
}

// answer decodes one ValidateRequest, validates its chains and encodes the
// ValidateResponse.
func (p *peer) answer(req []byte) ([]byte, error) {
	chains, err := decodeRequest(req)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err // already a status: RESOURCE_EXHAUSTED
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return encodeResponse(p.validateBatch(chains)), nil
}
