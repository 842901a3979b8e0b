package api

import (
	"bytes"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fill sets every field of m to a non-default value (the first member of
// each oneof), descending depth levels into sub-messages. Because it walks
// the descriptor, a field added to the .proto file is filled too, and a
// ShallowCopy that forgets it fails TestShallowCopy.
func fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && od.Fields().Get(0) != fd {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			if fd.Message() != nil {
				fill(l.AppendMutable().Message(), depth-1)
			} else {
				l.Append(scalar(fd))
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			k := scalar(fd.MapKey()).MapKey()
			if fd.MapValue().Message() != nil {
				fill(mp.Mutable(k).Message(), depth-1)
			} else {
				mp.Set(k, scalar(fd.MapValue()))
			}
		case fd.Message() != nil:
			sub := m.Mutable(fd).Message()
			if depth > 0 {
				fill(sub, depth-1)
			}
		default:
			m.Set(fd, scalar(fd))
		}
	}
}

func scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(vals.Len() - 1).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(7)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(7)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(7)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(7)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(1.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(1.5)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString("s-" + string(fd.Name()))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte("b-" + string(fd.Name())))
	}
	panic("unhandled kind " + fd.Kind().String())
}

func TestShallowCopy(t *testing.T) {
	tests := []struct {
		name string
		orig proto.Message
		copy func(proto.Message) proto.Message
	}{
		{"Task", &Task{}, func(m proto.Message) proto.Message { return m.(*Task).ShallowCopy() }},
		{"Node", &Node{}, func(m proto.Message) proto.Message { return m.(*Node).ShallowCopy() }},
		{"Service", &Service{}, func(m proto.Message) proto.Message { return m.(*Service).ShallowCopy() }},
		{"Cluster", &Cluster{}, func(m proto.Message) proto.Message { return m.(*Cluster).ShallowCopy() }},
		{"TaskStatus", &TaskStatus{}, func(m proto.Message) proto.Message { return m.(*TaskStatus).ShallowCopy() }},
		{"NodeStatus", &NodeStatus{}, func(m proto.Message) proto.Message { return m.(*NodeStatus).ShallowCopy() }},
	}
	unknown := protowire.AppendTag(nil, 999, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 42)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr := tc.orig.ProtoReflect()
			fill(pr, 3)
			pr.SetUnknown(unknown)

			// Every exported field must be set, or the test proves nothing.
			ov := reflect.ValueOf(tc.orig).Elem()
			for i := 0; i < ov.NumField(); i++ {
				if f := ov.Type().Field(i); f.IsExported() && ov.Field(i).IsZero() {
					t.Fatalf("fill left %s.%s at its zero value", tc.name, f.Name)
				}
			}

			c := tc.copy(tc.orig)
			if c == tc.orig {
				t.Fatal("ShallowCopy returned its receiver")
			}
			if !proto.Equal(tc.orig, c) {
				t.Fatalf("copy differs from original:\n got %v\nwant %v", c, tc.orig)
			}
			if got := c.ProtoReflect().GetUnknown(); !bytes.Equal(got, unknown) {
				t.Fatalf("unknown fields not kept: %x", got)
			}
			// Sub-messages, slices and maps are shared, not cloned.
			cv := reflect.ValueOf(c).Elem()
			for i := 0; i < ov.NumField(); i++ {
				f := ov.Type().Field(i)
				if !f.IsExported() {
					continue
				}
				switch f.Type.Kind() {
				case reflect.Pointer, reflect.Slice, reflect.Map:
					if ov.Field(i).Pointer() != cv.Field(i).Pointer() {
						t.Errorf("%s.%s was cloned, want shared", tc.name, f.Name)
					}
				}
			}
		})
	}
}

func TestShallowCopyNil(t *testing.T) {
	if (*Task)(nil).ShallowCopy() != nil || (*Node)(nil).ShallowCopy() != nil ||
		(*Service)(nil).ShallowCopy() != nil || (*Cluster)(nil).ShallowCopy() != nil ||
		(*TaskStatus)(nil).ShallowCopy() != nil || (*NodeStatus)(nil).ShallowCopy() != nil {
		t.Fatal("ShallowCopy of nil must be nil")
	}
}

func BenchmarkTaskShallowCopy(b *testing.B) {
	t := &Task{}
	fill(t.ProtoReflect(), 3)
	b.ReportAllocs()
	for b.Loop() {
		c := t.ShallowCopy()
		c.Status = &TaskStatus{State: TaskState_TASK_STATE_RUNNING}
	}
}

func BenchmarkTaskProtoClone(b *testing.B) {
	t := &Task{}
	fill(t.ProtoReflect(), 3)
	b.ReportAllocs()
	for b.Loop() {
		c := proto.Clone(t).(*Task)
		c.Status = &TaskStatus{State: TaskState_TASK_STATE_RUNNING}
	}
}
