package store

import "context"

// SetAfterCommitHook makes Tx call fn between its commit and the delivery of its changes, until
// the returned func restores the default.
func SetAfterCommitHook(fn func(context.Context)) (restore func()) {
	old := testHookAfterCommit
	testHookAfterCommit = fn
	return func() { testHookAfterCommit = old }
}
