# frozen_string_literal: true

require "socket"
require "net/http"
require "uri"

module FayeOnlineSpec
  # A faye-online server (thin running spec/fixtures/faye.ru) in its own
  # process on a free port, with its output captured in tmp/test-logs/.
  class ServerProcess
    RACKUP = File.join("spec", "fixtures", "faye.ru")
    MOUNT = "/faye"

    @running = []
    class << self
      attr_reader :running
    end

    attr_reader :port, :log_path, :pid

    def self.free_port
      server = TCPServer.new("127.0.0.1", 0)
      server.addr[1]
    ensure
      server&.close
    end

    # The first of n consecutive free ports, below the kernel's range for
    # outgoing connections, where no connection of the suite can take one
    # of them between this check and the server's listening.
    def self.free_port_block(count)
      low = File.read("/proc/sys/net/ipv4/ip_local_port_range").split.first.to_i rescue 32_768 # rubocop:disable Style/RescueModifier
      100.times do
        first = rand(10_000...(low - count))
        return first if (first...(first + count)).all? { |port| port_free?(port) }
      end
      raise "no #{count} consecutive free ports below #{low}"
    end

    def self.port_free?(port)
      TCPServer.new("127.0.0.1", port).close
      true
    rescue SystemCallError
      false
    end

    # env: the variables faye.ru and the library read (REDIS_URL,
    # FAYE_ONLINE_TEST_OPTIONS, ...: see Configuration#server_env); a nil
    # value removes the variable from the server's environment.
    def initialize(env, rackup: RACKUP)
      @env = env
      @rackup = rackup
      @port = self.class.free_port
      @log_path = FayeOnlineSpec.tmp_path("test-logs", "server-#{@port}.log")
    end

    def url
      "http://127.0.0.1:#{port}#{MOUNT}"
    end

    def start(timeout: 20)
      FileUtils.mkdir_p(File.dirname(log_path))
      File.write(log_path, "")
      env = @env.merge("RUBYOPT" => ["-Ilib", ENV["RUBYOPT"]].compact.join(" "),
                       "FAYE_ONLINE_TEST_PARENT_PID" => Process.pid.to_s)
      command = [Gem.ruby, "-S", "thin", "start", "-R", @rackup, "-p", port.to_s,
                 "-e", "production", "-a", "127.0.0.1"]
      @pid = Process.spawn(env, *command, chdir: ROOT, out: log_path, err: %i[child out],
                                           pgroup: true)
      self.class.running << self
      wait_until_answering(timeout)
      self
    end

    # Kills the server without warning (kill -9), as a crash would.
    def kill!
      return unless pid

      Process.kill("KILL", pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    ensure
      self.class.running.delete(self)
      @pid = nil
    end

    def alive?
      return false unless pid

      Process.waitpid(pid, Process::WNOHANG).nil?
    rescue Errno::ECHILD
      false
    end

    # TERM, then KILL if thin has not exited after the deadline.
    def stop(timeout: 10)
      return unless pid

      signal("TERM")
      deadline = Waiting.monotonic_now + timeout
      until reaped?
        if Waiting.monotonic_now >= deadline
          signal("KILL")
          Process.wait(pid)
          break
        end
        sleep 0.02
      end
    rescue Errno::ECHILD
      nil
    ensure
      self.class.running.delete(self)
      @pid = nil
    end

    def log_size
      File.size?(log_path) || 0
    end

    def log(since: 0)
      File.open(log_path, "rb") do |file|
        file.seek(since)
        file.read.to_s.force_encoding(Encoding::UTF_8).scrub
      end
    rescue Errno::ENOENT
      ""
    end

    def print_log(since: 0, io: $stderr)
      text = log(since: since)
      io.puts "----- faye-online server log (#{log_path}) -----"
      io.puts(text.empty? ? "(nothing logged)" : text)
      io.puts "----- end of server log -----"
    end

    private

    def signal(name)
      Process.kill(name, pid)
    rescue Errno::ESRCH
      nil
    end

    def reaped?
      !Process.waitpid(pid, Process::WNOHANG).nil?
    end

    def wait_until_answering(timeout)
      uri = URI(url)
      Waiting.wait_for(timeout: timeout, message: "the faye-online server to answer GET #{url}") do
        raise "the faye-online server exited while starting:\n#{log}" unless alive?

        begin
          Net::HTTP.start(uri.host, uri.port, open_timeout: 0.5, read_timeout: 2) do |http|
            http.get(uri.path).code.to_i.positive?
          end
        rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout
          false
        end
      end
    rescue Waiting::TimeoutError
      print_log
      stop
      raise
    end
  end
end

at_exit do
  FayeOnlineSpec::ServerProcess.running.dup.each(&:stop)
end
