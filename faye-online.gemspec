# frozen_string_literal: true

require_relative "lib/faye_online/version"

Gem::Specification.new do |spec|
  spec.name = "faye-online"
  spec.version = FayeOnline::VERSION
  spec.authors = ["faye-online authors"]
  spec.license = "MIT"

  spec.summary = "Who is online in each room, and for how long, for a Faye server"
  spec.description = <<~DESC.tr("\n", " ").strip
    A Faye server extension that tracks which users are online in each room
    (across tabs and server processes), publishes every change to the room's
    user_list channel, times how long each user spends in a lesson channel and
    logs every login and logout. The bookkeeping runs in a Rust core; hot state
    lives in process memory or Redis, durable records in MySQL/MariaDB, PostgreSQL
    or SQLite.
  DESC

  spec.required_ruby_version = ">= 3.0"

  spec.files = Dir.chdir(__dir__) do
    Dir[
      "lib/**/*.rb",
      "lib/**/*.html",
      "app/**/*",
      "db/migrate/*.rb",
      "ext/**/*",
      "vendor/faye/*.{js,map}",
      "Cargo.toml",
      "Cargo.lock",
      "README.md",
      "LICENSE"
    ].reject do |path|
      File.directory?(path) ||
        path.match?(%r{\Aext/[^/]+/target/}) ||
        path.match?(%r{\Aext/.*(?:/Makefile|\.so|\.o|mkmf\.log)\z})
    end.sort
  end
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/faye_online/extconf.rb"]

  spec.add_dependency "activerecord", ">= 6.1", "< 9"
  # 1.2.5 fixed meta channels that bypassed extensions (CVE-2020-11020).
  spec.add_dependency "faye", "~> 1.2", ">= 1.2.5"
  spec.add_dependency "thin", ">= 1.6", "< 3"
end
