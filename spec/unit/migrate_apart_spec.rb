# frozen_string_literal: true

require "open3"
require "tmpdir"
require "json"
require "sqlite3"

# The embedded default migrates its SQLite file at start. A Faye server
# started from a rackup file has not loaded ActiveRecord, and must not:
# Active Support would take over how Faye turns every message into JSON.
# Each example runs get_server in a Ruby process of its own.
RSpec.describe "Migrating the embedded default at start" do
  def run_ruby(script)
    lib = File.expand_path("../../lib", __dir__)
    out, err, status = Open3.capture3(Gem.ruby, "-I#{lib}", "-e", script)
    raise "ruby failed: #{err}" unless status.success?

    JSON.parse(out.lines.last)
  end

  it "leaves ActiveRecord and Active Support's JSON out of the server's process, with the tables made" do
    Dir.mktmpdir("faye-online-spec") do |dir|
      got = run_ruby(<<~RUBY)
        require "faye"
        require "faye-online"
        require "logger"
        require "json"
        FayeOnline.get_server(database_url: "sqlite3:#{dir}/db/online.sqlite3", logger: Logger.new(nil))
        json = { "data" => "<b>&</b>" }.to_json
        FayeOnline.get_server(database_url: "sqlite3:#{dir}/db/online.sqlite3", logger: Logger.new(nil)) # again: nothing pending
        puts JSON.generate("active_record" => !!defined?(ActiveRecord::Base),
                           "active_support_json" => !!defined?(ActiveSupport::JSON::Encoding), "json" => json)
      RUBY
      expect(got).to eq("active_record" => false, "active_support_json" => false, "json" => '{"data":"<b>&</b>"}')
      db = SQLite3::Database.new("#{dir}/db/online.sqlite3")
      tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").flatten
      db.close
      expect(tables).to include("faye_user_login_logs", "faye_online_intervals", "schema_migrations")
    end
  end

  it "raises the child's error at start when the migration fails" do
    got = run_ruby(<<~RUBY)
      require "faye"
      require "faye-online"
      require "logger"
      require "json"
      begin
        FayeOnline.get_server(database_url: "sqlite3:/proc/no-such-dir/online.sqlite3", logger: Logger.new(nil))
        puts JSON.generate("raised" => nil)
      rescue FayeOnline::Error => e
        puts JSON.generate("raised" => e.message)
      end
    RUBY
    expect(got["raised"]).to match(%r{migrating sqlite3:/proc/no-such-dir/online.sqlite3 failed: Errno::ENOENT})
  end
end
