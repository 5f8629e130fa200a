# frozen_string_literal: true

require "tmpdir"

# A server whose output goes to a file or a pipe (systemd, Docker,
# `bin/dev > log`) says what goes wrong at once: its log is not held back
# in a buffer until the process exits, or lost when it is killed.
RSpec.describe "The server's log", :integration do
  it "reaches a file while the server runs, a failing write included" do
    Dir.mktmpdir("faye-online-logs") do |dir|
      rackup = File.join(dir, "faye.ru")
      # As a site writes it: nothing here makes $stdout synchronous.
      File.write(rackup, <<~RUBY)
        require "faye"
        require "faye-online"
        Faye::WebSocket.load_adapter("thin")
        run FayeOnline.get_server(store: :memory, database_url: ENV.fetch("DATABASE_URL"), migrate: false)
      RUBY
      unopenable = "sqlite3:#{File.join(dir, 'no-such-dir', 'records.sqlite3')}"
      server = FayeOnlineSpec::ServerProcess.new({ "DATABASE_URL" => unopenable }, rackup: rackup).start
      begin
        tab = FayeOnlineSpec::BayeuxClient.new(server.url).handshake!
        auth = { "room_channel" => "/classes/4", "time_channel" => "/courses/5/lessons/1",
                 "current_user" => { "uid" => 1, "uname" => "ann" } }
        expect(tab.connect(auth: auth)).to include("successful" => true)
        eventually(timeout: 5) do
          expect(server.log).to include("presence in process memory")
          expect(server.log).to match(/cannot write to sqlite.*retrying/)
        end
        expect(server).to be_alive
      ensure
        server.stop(timeout: 1) # its records can never be written: no need to wait for them
      end
    end
  end
end
