# frozen_string_literal: true

require "open3"
require "tmpdir"
require "yaml"

# `WORKERS=n rake faye:start` in an app: n thin processes behind HAProxy on
# one port, with no stickiness, sharing Redis through Faye's engine on it.
RSpec.describe "WORKERS=n rake faye:start", :integration do
  FayeOnlineSpec.deployments(:redis).first(1).each do |configuration|
    context "(#{configuration.name})" do
      include_context "a faye-online server", configuration

      def thin_pids(port)
        IO.popen(["pgrep", "-f", "thin start .* -p #{port} "], &:read).split.map(&:to_i)
      end

      it "refuses to start, naming the port, when one the workers need is in use" do
        Dir.mktmpdir do |dir|
          FileUtils.mkdir_p(File.join(dir, "config"))
          options = configuration.query_options(namespace: namespace)
          File.write(File.join(dir, "config", "faye_online.yml"),
                     YAML.dump("production" => options.transform_keys(&:to_s).transform_values(&:to_s)))
          File.write(File.join(dir, "Rakefile"), %(require "faye_online/tasks"\n))
          File.write(File.join(dir, "faye.ru"), %(require "faye-online"\nrun FayeOnline.get_server\n))
          port = FayeOnlineSpec::ServerProcess.free_port_block(4)
          holder = TCPServer.new("127.0.0.1", port + 2)
          output, status = Open3.capture2e({ "RUBYLIB" => File.join(FayeOnlineSpec::ROOT, "lib"), "RACK_ENV" => "production",
                                             "RAILS_ENV" => nil, "WORKERS" => "3", "FAYE_PORT" => port.to_s },
                                           Gem.ruby, "-S", "rake", "-f", File.join(dir, "Rakefile"), "faye:start",
                                           chdir: dir, stdin_data: "")
          expect(status).not_to be_success
          expect(output).to include("#{port + 2} is in use")
          (1..3).each { |i| expect(thin_pids(port + i)).to eq [] }
        ensure
          holder&.close
        end
      end

      it "serves one port with three processes, any of which serves any client, and restarts one that dies" do
        Dir.mktmpdir do |dir|
          FileUtils.mkdir_p(File.join(dir, "config"))
          options = configuration.query_options(namespace: namespace).merge(timeout: 5, gc: 1)
          File.write(File.join(dir, "config", "faye_online.yml"),
                     YAML.dump("production" => options.transform_keys(&:to_s).transform_values(&:to_s)))
          File.write(File.join(dir, "Rakefile"), %(require "faye_online/tasks"\n))
          File.write(File.join(dir, "faye.ru"), <<~RU)
            require "faye-online"
            Faye::WebSocket.load_adapter("thin")
            run FayeOnline.get_server
          RU
          # HAProxy's port and the three after it, for the workers.
          port = FayeOnlineSpec::ServerProcess.free_port_block(4)
          log = FayeOnlineSpec.tmp_path("test-logs", "workers-#{port}.log")
          FileUtils.mkdir_p(File.dirname(log))
          pid = Process.spawn({ "RUBYLIB" => File.join(FayeOnlineSpec::ROOT, "lib"), "RACK_ENV" => "production",
                                "RAILS_ENV" => nil, "WORKERS" => "3", "FAYE_PORT" => port.to_s },
                              Gem.ruby, "-S", "rake", "-f", File.join(dir, "Rakefile"), "faye:start",
                              chdir: dir, out: log, err: %i[child out])
          begin
            url = "http://127.0.0.1:#{port}/faye"
            begin
              FayeOnlineSpec::Waiting.wait_for(timeout: 30, message: "the workers and HAProxy to answer") do
                File.read(log).include?("3 workers on ports") && FayeOnlineSpec::BayeuxClient.new(url).handshake!.client_id
              rescue SystemCallError, RuntimeError, Net::ReadTimeout
                false
              end
            rescue FayeOnlineSpec::Waiting::TimeoutError => e
              raise e.class, "#{e.message}\nrake faye:start printed:\n#{File.read(log)}"
            end
            (1..3).each { |i| expect(thin_pids(port + i).size).to eq 1 }

            room = new_room
            lesson = new_lesson
            users = Array.new(3) { new_user }
            tabs = users.map do |user|
              tab = FayeOnlineSpec::BayeuxClient.new(url).handshake!
              expect(tab.connect(auth: auth_for(user, room: room, lesson: lesson))).to include("successful" => true)
              expect(tab.subscribe("/chat#{room}")).to include("successful" => true)
              tab
            end
            eventually { expect(FayeOnline.online_users(room).size).to eq 3 }
            tabs.first.publish("/chat#{room}", { "hello" => "all" })
            tabs.each do |tab|
              eventually do
                tab.connect
                expect(tab.deliveries.map { |d| d["data"] }).to eq [{ "hello" => "all" }]
              end
            end

            # A worker killed is started again; meanwhile the others serve.
            Process.kill("KILL", thin_pids(port + 2).first)
            eventually(timeout: 15) do
              expect(File.read(log)).to include("the worker on port #{port + 2} exited; starting it again")
              expect(thin_pids(port + 2).size).to eq 1
            end
            eventually(timeout: 10) { tabs.each { |tab| expect(tab.connect).to include("successful" => true) } }
            expect(FayeOnline.online_users(room).size).to eq 3
          ensure
            Process.kill("TERM", pid)
            FayeOnlineSpec::Waiting.wait_for(timeout: 15, message: "rake faye:start to stop") do
              Process.waitpid(pid, Process::WNOHANG)
            end
            (1..3).each { |i| expect(thin_pids(port + i)).to eq [] }
          end
        end
      end
    end
  end
end
