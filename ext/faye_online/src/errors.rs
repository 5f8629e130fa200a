//! Errors raised into Ruby: the classes are declared in Ruby
//! (`lib/faye_online/error.rb`) and looked up here by name.

use magnus::{prelude::*, Error, ExceptionClass, RModule, Ruby};

fn error_class(ruby: &Ruby, name: &str) -> ExceptionClass {
    ruby.class_object()
        .const_get::<_, RModule>("FayeOnline")
        .and_then(|m| m.const_get::<_, ExceptionClass>(name))
        .unwrap_or_else(|_| ruby.exception_runtime_error())
}

/// `FayeOnline::ConfigurationError`.
pub fn configuration_error(ruby: &Ruby, e: impl std::fmt::Display) -> Error {
    Error::new(error_class(ruby, "ConfigurationError"), e.to_string())
}

/// `FayeOnline::StoreError`: Redis or SQL could not answer.
pub fn store_error(ruby: &Ruby, e: impl std::fmt::Display) -> Error {
    Error::new(error_class(ruby, "StoreError"), e.to_string())
}
