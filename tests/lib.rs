//! Test-only crate: see integration/ and e2e/.
