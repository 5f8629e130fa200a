# frozen_string_literal: true

require "json"
require "open3"

module FayeOnlineSpec
  # A Node.js program of spec/fixtures/node (a Faye server on faye-redis, or
  # the npm faye client), with its stdout read line by line as it comes.
  # Closing its stdin stops it.
  class NodeProcess
    DIR = File.join("spec", "fixtures", "node")

    attr_reader :lines

    def initialize(script, *args)
      @stdin, @stdout, @wait = Open3.popen2e({ "NODE_PATH" => File.join(ROOT, "node_modules") },
                                             "node", File.join(DIR, script), *args.map(&:to_s), chdir: ROOT)
      @lines = []
      @lock = Mutex.new
      @reader = Thread.new do
        @stdout.each_line { |line| @lock.synchronize { @lines << line.chomp } }
      rescue IOError
        nil
      end
    end

    # The lines printed so far that are JSON objects, parsed.
    def messages
      @lock.synchronize { @lines.dup }.filter_map do |line|
        JSON.parse(line)
      rescue JSON::ParserError
        nil
      end
    end

    def wait_for_line(text, timeout: 10)
      Waiting.wait_for(timeout: timeout, message: "#{text.inspect} from node (#{output})") do
        raise "node exited: #{output}" unless @wait.alive?

        @lock.synchronize { @lines.include?(text) }
      end
    end

    def wait_for(timeout: 10, &condition)
      Waiting.wait_for(timeout: timeout, message: "node to print what was expected (#{output})") do
        messages.any?(&condition)
      end
    end

    def puts(line)
      @stdin.puts(line)
      @stdin.flush
    end

    def output
      @lock.synchronize { @lines.last(20).join(" | ") }
    end

    def stop
      @stdin.close unless @stdin.closed?
      Waiting.wait_for(timeout: 5, message: "node to exit") { !@wait.alive? }
    rescue RuntimeError
      Process.kill("KILL", @wait.pid)
    ensure
      @reader&.join(1)
    end
  end
end
