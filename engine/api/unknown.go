package api

// Hand encoders (the store's proposal encoder) write a message's known
// fields themselves and must fall back to proto.Marshal when the message
// carries fields this version does not know, which proto.Marshal keeps.
// These report that without going through protoreflect.

// HasUnknownFields reports whether x (non-nil) holds unknown fields.
func (x *StoreAction) HasUnknownFields() bool { return len(x.unknownFields) > 0 }

// HasUnknownFields reports whether x (non-nil) holds unknown fields.
func (x *KV) HasUnknownFields() bool { return len(x.unknownFields) > 0 }

// HasUnknownFields reports whether x (non-nil) holds unknown fields.
func (x *Meta) HasUnknownFields() bool { return len(x.unknownFields) > 0 }
