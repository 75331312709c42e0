package recorder

import "context"

// Nop records nothing. It exists only so benchmarks can measure the cost of
// recording (config recording.enabled: false); it is never a default.
type Nop struct{}

func (Nop) SessionStart(_ context.Context, info SessionInfo) (Session, error) {
	return nopSession(info.ID), nil
}
func (Nop) AuthFailure(context.Context, AuthFailure) error { return nil }

type nopSession string

func (s nopSession) ID() string          { return string(s) }
func (nopSession) MayBlock() bool        { return false }
func (nopSession) Query(Query) error     { return nil }
func (nopSession) Command(Command) error { return nil }
func (nopSession) Output(Output) error   { return nil }
func (nopSession) File(FileOp) error     { return nil }
func (nopSession) Forward(Forward) error { return nil }
func (nopSession) End(End) error         { return nil }
