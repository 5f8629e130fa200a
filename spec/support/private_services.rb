# frozen_string_literal: true

require "fileutils"
require "tmpdir"

module FayeOnlineSpec
  # A service process of a test's own, on a free loopback port, that the test
  # may kill and start again by its pid without touching the machine's shared
  # servers. #start runs it on the same port (and the same data) again.
  class PrivateService
    attr_reader :port, :pid

    def initialize(name)
      @name = name
      @port = ServerProcess.free_port
      @log_path = FayeOnlineSpec.tmp_path("test-logs", "#{name}-#{@port}.log")
    end

    def start(timeout: 30)
      raise "#{@name} is running already" if running?

      FileUtils.mkdir_p(File.dirname(@log_path))
      @pid = Process.spawn(*command, out: [@log_path, "a"], err: %i[child out], pgroup: true)
      Waiting.wait_for(timeout: timeout, message: "#{@name} on port #{port} to answer") do
        raise "#{@name} exited at start: #{File.read(@log_path)[-2000..]}" unless running?

        answering?
      end
      self
    end

    # Stops it by its pid: KILL as a crash would, TERM as an operator would.
    def stop(signal: "KILL")
      return unless running?

      Process.kill(signal, pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    ensure
      @pid = nil
    end

    def running?
      return false unless pid

      Process.waitpid(pid, Process::WNOHANG).nil?
    rescue Errno::ECHILD
      false
    end

    def answering?
      TCPSocket.new("127.0.0.1", port).close
      true
    rescue SystemCallError
      false
    end
  end

  # redis-server keeping nothing on disk: a restart comes back empty, the
  # worst case for faye-online's hot state.
  class PrivateRedis < PrivateService
    def initialize
      super("redis")
    end

    def url(db = 0)
      "redis://127.0.0.1:#{port}/#{db}"
    end

    def command
      ["redis-server", "--port", port.to_s, "--bind", "127.0.0.1", "--save", "",
       "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
    end

    def answering?
      Redis.new(url: url, connect_timeout: 0.5).then { |r| r.ping == "PONG" && r.close }
      true
    rescue StandardError
      false
    end
  end

  # mariadbd with a data directory of its own (root without a password over
  # TCP); a restart keeps the data, as a database server's restart does.
  class PrivateMariadb < PrivateService
    def initialize
      super("mariadb")
      @dir = Dir.mktmpdir("faye-online-mariadb-")
      FileUtils.chown("mysql", "mysql", @dir) if Process.uid.zero?
      install = ["mariadb-install-db", "--no-defaults", "--datadir=#{data_dir}",
                 "--auth-root-authentication-method=normal", "--skip-test-db"]
      install << "--user=mysql" if Process.uid.zero?
      output = IO.popen(install, err: %i[child out], &:read)
      raise "mariadb-install-db failed: #{output}" unless $?.success?
    end

    def data_dir
      File.join(@dir, "data")
    end

    def url(database)
      "mysql2://root@127.0.0.1:#{port}/#{database}"
    end

    def command
      command = ["mariadbd", "--no-defaults", "--datadir=#{data_dir}", "--port=#{port}",
                 "--bind-address=127.0.0.1", "--socket=#{File.join(@dir, 'mysqld.sock')}",
                 "--pid-file=#{File.join(@dir, 'mysqld.pid')}", "--skip-log-bin",
                 "--innodb-buffer-pool-size=32M"]
      command << "--user=mysql" if Process.uid.zero?
      command
    end

    def answering?
      require "mysql2"
      Mysql2::Client.new(host: "127.0.0.1", port: port, username: "root", connect_timeout: 1).close
      true
    rescue StandardError
      false
    end

    def create_database(name)
      client = Mysql2::Client.new(host: "127.0.0.1", port: port, username: "root")
      client.query("CREATE DATABASE IF NOT EXISTS `#{name}` CHARACTER SET utf8mb4")
    ensure
      client&.close
    end

    def destroy
      stop(signal: "TERM")
      FileUtils.rm_rf(@dir)
    end
  end

  # A PostgreSQL server with a cluster of its own (initdb in a temporary
  # directory, postgres trusted over TCP); a restart keeps the data. As
  # root, it runs as the postgres user (PostgreSQL refuses root), through
  # setpriv, which execs in place: the pid is the postmaster's.
  class PrivatePostgres < PrivateService
    def self.bin_dir
      Dir["/usr/lib/postgresql/*/bin"].max_by { |dir| dir[%r{/(\d+)/bin\z}, 1].to_i } or
        raise "PostgreSQL's server programs are missing (bin/setup --services)"
    end

    def initialize
      super("postgres")
      @dir = Dir.mktmpdir("faye-online-postgres-")
      FileUtils.chown("postgres", "postgres", @dir) if Process.uid.zero?
      init = as_owner([File.join(self.class.bin_dir, "initdb"), "-D", data_dir, "-U", "postgres",
                       "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
      output = IO.popen(init, err: %i[child out], &:read)
      raise "initdb failed: #{output}" unless $?.success?
    end

    def data_dir
      File.join(@dir, "data")
    end

    def url(database)
      "postgresql://postgres@127.0.0.1:#{port}/#{database}"
    end

    def command
      as_owner([File.join(self.class.bin_dir, "postgres"), "-D", data_dir, "-p", port.to_s,
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=#{@dir}",
                "-c", "fsync=off", "-c", "shared_buffers=16MB"])
    end

    def as_owner(command)
      return command unless Process.uid.zero?

      ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *command]
    end

    def answering?
      require "pg"
      PG.connect(host: "127.0.0.1", port: port, user: "postgres", dbname: "postgres", connect_timeout: 1).close
      true
    rescue StandardError
      false
    end

    def create_database(name)
      require "pg"
      client = PG.connect(host: "127.0.0.1", port: port, user: "postgres", dbname: "postgres")
      client.exec("CREATE DATABASE #{client.quote_ident(name)} ENCODING 'UTF8' TEMPLATE template0")
    ensure
      client&.close
    end

    # A postmaster killed with KILL leaves its backends to notice and exit;
    # a start before they have gone would find their shared memory in use.
    def start(timeout: 30)
      Waiting.wait_for(timeout: 10, message: "the killed PostgreSQL's backends to exit") do
        !File.exist?(File.join(data_dir, "postmaster.pid")) || !backends_alive?
      end
      super
    end

    def backends_alive?
      pid = File.read(File.join(data_dir, "postmaster.pid")).to_i
      return false if pid.zero?

      Process.kill(0, pid)
      true
    rescue Errno::ESRCH, Errno::ENOENT
      false
    end

    # INT is PostgreSQL's fast shutdown: its clients are disconnected (TERM
    # would wait for every one of them to leave).
    def destroy
      stop(signal: "INT")
      FileUtils.rm_rf(@dir)
    end
  end
end
