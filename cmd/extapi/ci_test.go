package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAllocTestsRunInCI: the tests built only without -race (the allocation tests) are run by
// `make allocs`, which selects them by name: every one must have Alloc in its name.
func TestAllocTestsRunInCI(t *testing.T) {
	testFunc := regexp.MustCompile(`(?m)^func (Test\w*)\(`)
	found := 0
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "//go:build !race") {
			return nil
		}
		for _, m := range testFunc.FindAllStringSubmatch(string(b), -1) {
			found++
			if !strings.Contains(m[1], "Alloc") {
				t.Errorf("%s: %s is built only without -race but `make allocs` (-run Alloc) does not select it", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Error("found no test built only without -race; the walk is broken")
	}
}
