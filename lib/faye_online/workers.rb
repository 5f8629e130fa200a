# frozen_string_literal: true

require "fileutils"
require "socket"
require "tmpdir"
require_relative "clock"

module FayeOnline
  # `WORKERS=n rake faye:start`: n thin processes serving faye.ru on
  # internal ports, and HAProxy on the public port in front of them,
  # balancing each request round-robin with no stickiness (Faye's engine
  # on Redis lets any process serve any client). A worker that exits is
  # started again; TERM or INT stops them all.
  class Workers
    RESTART_DELAY = 1

    def initialize(root:, port:, workers:, out: $stdout)
      @root = root
      @port = Integer(port)
      @count = Integer(workers)
      @out = out
      @children = {} # pid => what it is (:haproxy or a worker's port)
      @stopping = false
    end

    # Ports of the workers: the next ones after the public port.
    def worker_ports
      (1..@count).map { |i| @port + i }
    end

    # HAProxy's configuration: long polls are held up to Faye's timeout,
    # WebSockets as long as they live.
    def haproxy_config
      servers = worker_ports.each_with_index.map do |port, i|
        "  server worker#{i + 1} 127.0.0.1:#{port} check inter 1s fall 2 rise 1"
      end
      <<~CFG
        global
          maxconn #{max_connections}
        defaults
          mode http
          option http-server-close
          option redispatch
          retries 3
          timeout connect 5s
          timeout client 120s
          timeout server 120s
          timeout tunnel 1h
        frontend faye
          bind *:#{@port}
          default_backend workers
        backend workers
          balance roundrobin
        #{servers.join("\n")}
      CFG
    end

    # As many connections as the file descriptor limit lets HAProxy hold
    # (two descriptors each), up to 20,000.
    def max_connections
      limit = Process.getrlimit(:NOFILE).last
      limit = 1_048_576 if limit == Process::RLIM_INFINITY
      [[(limit - 100) / 2, 20_000].min, 256].max
    end

    def run
      check!
      check_ports!
      dir = Dir.mktmpdir("faye-online-workers")
      config = File.join(dir, "haproxy.cfg")
      File.write(config, haproxy_config)
      %w[TERM INT].each { |signal| trap(signal) { @stopping = true } }
      worker_ports.each { |port| start_worker(port) }
      # HAProxy starts once every worker answers: its first health checks
      # would otherwise mark them down, and it would answer 503 meanwhile.
      wait_for_workers
      start_haproxy(config)
      say "#{@count} workers on ports #{worker_ports.join(', ')}, HAProxy on #{@port}"
      supervise(config)
    ensure
      stop_all
      FileUtils.rm_rf(dir) if dir
    end

    private

    # A line for the log, at once (a file or a pipe would hold it).
    def say(text)
      @out.puts "faye-online: #{text}"
      @out.flush
    end

    def check!
      abort "faye-online: WORKERS must be at least 1" if @count < 1
      unless system("command -v haproxy >/dev/null 2>&1")
        abort "faye-online: WORKERS=#{@count} needs HAProxy in front of the workers: apt-get install haproxy"
      end
      return if Configuration.new(root: @root).engine == :redis

      abort "faye-online: WORKERS=#{@count} needs Redis, which the workers share (set REDIS_URL or redis_url:)"
    end

    # Every worker port must be free before anything starts: a port held
    # by another program would get HAProxy's traffic, and one held by an
    # outgoing connection would stop the worker from listening.
    def check_ports!
      taken = ([@port] + worker_ports).reject { |port| free?(port) }
      return if taken.empty?

      abort "faye-online: WORKERS=#{@count} needs ports #{@port}-#{worker_ports.last} free " \
            "(HAProxy on #{@port}, the workers after it); #{taken.join(', ')} #{taken.size == 1 ? 'is' : 'are'} in use"
    end

    def free?(port)
      TCPServer.new("127.0.0.1", port).close
      true
    rescue SystemCallError
      false
    end

    # Waits until every worker listens. A worker that exits first stops
    # everything at once, with its port named (its own output says why).
    def wait_for_workers(timeout: 60)
      deadline = Clock.monotonic + timeout
      waiting = worker_ports.dup
      until waiting.empty? || @stopping
        exited = reap_exited
        abort "faye-online: the worker on port #{exited} exited before it answered" if exited
        waiting.reject! { |port| answering?(port) }
        if Clock.monotonic > deadline
          abort "faye-online: the workers on ports #{waiting.join(', ')} did not start within #{timeout} s"
        end
        sleep 0.1 unless waiting.empty?
      end
    end

    # The port of a worker that has exited, if one has.
    def reap_exited
      pid = Process.wait2(-1, Process::WNOHANG)&.first
      pid && @children.delete(pid)
    rescue Errno::ECHILD
      nil
    end

    def answering?(port)
      TCPSocket.new("127.0.0.1", port).close
      true
    rescue SystemCallError
      false
    end

    def start_worker(port)
      pid = Process.spawn("thin", "start", "-R", "faye.ru", "-p", port.to_s, "-a", "127.0.0.1",
                          "-e", "production", chdir: @root)
      @children[pid] = port
    end

    def start_haproxy(config)
      pid = Process.spawn("haproxy", "-db", "-f", config, chdir: @root)
      @children[pid] = :haproxy
    end

    # Waits for children; one that exits while not stopping is started
    # again after a second.
    def supervise(config)
      until @stopping
        pid = Process.wait2(-1, Process::WNOHANG)&.first
        unless pid
          sleep 0.2
          next
        end
        what = @children.delete(pid)
        next if @stopping || what.nil?

        say "#{what == :haproxy ? 'HAProxy' : "the worker on port #{what}"} exited; starting it again"
        sleep RESTART_DELAY
        what == :haproxy ? start_haproxy(config) : start_worker(what)
      end
    end

    def stop_all
      @children.each_key { |pid| Process.kill("TERM", pid) rescue nil } # rubocop:disable Style/RescueModifier
      deadline = Clock.monotonic + 10
      until @children.empty?
        pid = Process.wait2(-1, Process::WNOHANG)&.first
        if pid
          @children.delete(pid)
        elsif Clock.monotonic > deadline
          @children.each_key { |p| Process.kill("KILL", p) rescue nil } # rubocop:disable Style/RescueModifier
          break
        else
          sleep 0.05
        end
      end
    rescue Errno::ECHILD
      nil
    end
  end
end
