# frozen_string_literal: true

require "json"
require "open3"
require "timeout"

module FayeOnlineSpec
  # A real headless Chromium, driven through spec/support/browser/driver.mjs
  # (Node and playwright-core, installed by `bin/setup --browser`). It also
  # serves spec/fixtures/browser/ on a loopback port of its own, so the pages
  # have an origin apart from the Faye server's, as a Rails app's pages do.
  #
  #   browser = Browser.start
  #   browser.open("a1", user: "alice", url: browser.page_url("room.html", ...))
  #   browser.eval("a1", "probe.lists.length")
  class Browser
    DRIVER = File.join(__dir__, "browser", "driver.mjs")
    PAGES = File.join(ROOT, "spec", "fixtures", "browser")

    class Error < StandardError; end

    attr_reader :origin, :pid, :version

    def self.available?
      missing_reason.nil?
    end

    # Why the browser specs cannot run here, or nil.
    def self.missing_reason
      chromium = ENV.fetch("FAYE_ONLINE_CHROMIUM", "/usr/bin/chromium")
      return "#{chromium} is not installed (bin/setup --browser installs it)" unless File.executable?(chromium)
      return "node is not installed" unless system("node --version", out: File::NULL, err: File::NULL)
      unless File.directory?(File.join(ROOT, "node_modules", "playwright-core"))
        return "playwright-core is not installed (bin/setup --browser installs it)"
      end

      nil
    end

    def self.start
      new.tap(&:launch)
    end

    def initialize
      @stdin, @stdout, @stderr_thread, @wait = spawn_driver
      @next_id = 0
    end

    def launch
      info = command("launch", timeout: 60)
      @origin = info.fetch("origin")
      @pid = info["pid"]
      @version = info["version"]
      self
    end

    def page_url(page, **params)
      query = URI.encode_www_form(params.transform_keys(&:to_s))
      "#{origin}/#{page}#{query.empty? ? '' : "?#{query}"}"
    end

    def open(name, user:, url:)
      command("open", name: name, user: user, url: url)
    end

    def eval(name, expression)
      command("eval", name: name, expression: expression)
    end

    # The tab shows the browser's real visibility from now on (see
    # driver.mjs): a tab behind another, or in a minimized window, is hidden.
    def real_visibility(name)
      command("real_visibility", name: name)
    end

    # Brings the tab to the front of its user's window.
    def front(name)
      command("front", name: name)
    end

    # Minimizes (or restores) the window of the tab's user.
    def minimize(name, minimized: true)
      command("minimize", name: name, minimized: minimized)
    end

    def touch(name)
      command("touch", name: name)
    end

    # Closes a tab as a user would; a page that asks to confirm gets
    # `confirm` as the user's answer. Returns {"asked", "closed", ...}.
    def close(name, confirm: true)
      command("close", name: name, confirm: confirm)
    end

    def goto(name, url)
      command("goto", name: name, url: url)
    end

    def back(name)
      command("back", name: name)
    end

    def screenshot(name, path, width: 1200, height: 800)
      FileUtils.mkdir_p(File.dirname(path))
      command("screenshot", name: name, path: File.expand_path(path), width: width, height: height)
    end

    def console_log(name)
      command("log", name: name)
    end

    # Kills the browser process with SIGKILL, as a crash would.
    def kill!
      command("kill")
    end

    def quit
      return unless @stdin

      begin
        command("quit", timeout: 10)
      rescue Error, IOError, SystemCallError
        nil
      end
      @stdin.close unless @stdin.closed?
      Process.kill("KILL", @wait.pid) if @wait.alive?
    rescue Errno::ESRCH
      nil
    ensure
      @stdin = nil
    end

    private

    def spawn_driver
      stdin, stdout, stderr, wait = Open3.popen3("node", DRIVER, PAGES, chdir: ROOT)
      stderr_thread = Thread.new do
        stderr.each_line { |line| $stderr.puts("browser driver: #{line}") }
      rescue IOError
        nil
      end
      [stdin, stdout, stderr_thread, wait]
    end

    def command(cmd, timeout: 30, **args)
      id = (@next_id += 1)
      @stdin.puts(JSON.generate(args.merge(id: id, cmd: cmd)))
      @stdin.flush
      line = Timeout.timeout(timeout, Error, "the browser did not answer #{cmd} within #{timeout}s") { @stdout.gets }
      raise Error, "the browser driver exited (#{cmd})" unless line

      reply = JSON.parse(line)
      raise Error, "#{cmd} failed: #{reply['error']}" unless reply["ok"]

      reply["value"]
    end
  end
end
