package testbed

import (
	"context"
	"fmt"

	"mailmigrate/internal/sample"
)

// The sample mail and certificates live in package sample, which the
// demo uses too without pulling the test bed (and package testing) into
// the program; the test bed's users keep their names for them.
type (
	// Corpus is a generated set of messages in folders.
	Corpus = sample.Corpus
	// CorpusOptions says what GenerateCorpus makes.
	CorpusOptions = sample.CorpusOptions
	// Message is one generated message.
	Message = sample.Message
)

var (
	// GenerateCorpus makes sample mail (see sample.GenerateCorpus).
	GenerateCorpus = sample.GenerateCorpus
	// SelfSignedCert makes a certificate for test servers.
	SelfSignedCert = sample.SelfSignedCert
	// ServerFolderNames maps sample folders to a server's names.
	ServerFolderNames = sample.ServerFolderNames
)

// ctxErr prefers the context's error (a cancelled run) over what it
// caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// The corpus's names that tests refer to.
const (
	KeywordForwarded = sample.KeywordForwarded
	KeywordLabel1    = sample.KeywordLabel1
	KeywordProjekt   = sample.KeywordProjekt
	FolderSentCZ     = sample.FolderSentCZ
	FolderTrashCZ    = sample.FolderTrashCZ
	FolderDotLeaf    = sample.FolderDotLeaf
	FolderClientA    = sample.FolderClientA
	FolderArchive    = sample.FolderArchive
	FolderDrafts     = sample.FolderDrafts
	FolderAmpersand  = sample.FolderAmpersand
	SharedMessageID  = sample.SharedMessageID
)

// appendMessage appends one message (see sample.Append).
var appendMessage = sample.Append
