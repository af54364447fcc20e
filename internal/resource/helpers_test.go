package resource

import (
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

func infoExpiring(t time.Time) *auth.TokenInfo { return &auth.TokenInfo{Expiration: t} }
