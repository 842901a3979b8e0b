package api

// RPC names of the certificate authority protocol (ca.proto). The
// authorization table (engine/ca) lists each one.
const (
	CAService                          = "/swarm.CA/"
	MethodIssueNodeCertificate         = CAService + "IssueNodeCertificate"
	MethodIssueNodeCertificateResponse = CAService + "IssueNodeCertificateResponse"
	MethodGetRootCA                    = CAService + "GetRootCA"
	MethodGetRootCAResponse            = CAService + "GetRootCAResponse"
	MethodRootRotation                 = CAService + "RootRotation"
)

// Method implements env.Message.
func (*IssueNodeCertificate) Method() string { return MethodIssueNodeCertificate }

// Method implements env.Message.
func (*IssueNodeCertificateResponse) Method() string { return MethodIssueNodeCertificateResponse }

// Method implements env.Message.
func (*GetRootCA) Method() string { return MethodGetRootCA }

// Method implements env.Message.
func (*GetRootCAResponse) Method() string { return MethodGetRootCAResponse }

// Method implements env.Message.
func (*RootRotation) Method() string { return MethodRootRotation }

// TraceString keeps tokens and keys out of traces: "IssueNodeCertificate
// id=5 join" or "... renew".
func (x *IssueNodeCertificate) TraceString() string {
	if x.GetToken() != "" {
		return "IssueNodeCertificate join " + x.GetNodeId()
	}
	return "IssueNodeCertificate renew"
}
