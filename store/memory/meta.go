package memory

import (
	"bytes"
	"context"
)

func (s *Store) PutMetaOnce(_ context.Context, name string, value []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.meta == nil {
		s.meta = make(map[string][]byte)
	}
	if have, ok := s.meta[name]; ok {
		return bytes.Clone(have), nil
	}
	s.meta[name] = bytes.Clone(value)
	return bytes.Clone(value), nil
}
