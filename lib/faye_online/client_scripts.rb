# frozen_string_literal: true

module FayeOnline
  # Serves the browser scripts beside the Faye endpoint, for pages that do
  # not use the Rails asset pipeline:
  #
  #   GET /faye-online/faye-browser-min.js   Faye's browser client
  #   GET /faye-online/faye-online.js        Faye.init_online_client
  #   GET /faye-online/client.js             both, in order, in one script
  #                                          (what the Rails helper loads:
  #                                          one script cannot run out of
  #                                          order, as two added by Turbo can)
  #
  # Every other path answers 404, as a bare Faye server does.
  class ClientScripts
    ROOT = File.expand_path("../..", __dir__)
    FILES = {
      "/faye-online/faye-browser-min.js" => File.join(ROOT, "vendor/faye/faye-browser-min.js"),
      "/faye-online/faye-online.js" => File.join(ROOT, "app/assets/javascripts/faye-online.js")
    }.freeze
    BUNDLE = "/faye-online/client.js"

    def call(env)
      paths = env["PATH_INFO"] == BUNDLE ? FILES.values : [FILES[env["PATH_INFO"]]].compact
      return not_found unless paths.any? && %w[GET HEAD].include?(env["REQUEST_METHOD"])

      paths.each { |path| return missing(path) unless File.file?(path) }
      body = paths.map { |path| File.binread(path) }.join(";\n")
      headers = { "Content-Type" => "application/javascript; charset=utf-8",
                  "Content-Length" => body.bytesize.to_s, "Cache-Control" => "public, max-age=3600",
                  "Access-Control-Allow-Origin" => "*" }
      [200, headers, env["REQUEST_METHOD"] == "HEAD" ? [] : [body]]
    end

    private

    def not_found
      [404, { "Content-Type" => "text/plain" }, ["Not found\n"]]
    end

    def missing(path)
      [404, { "Content-Type" => "text/plain" },
       ["#{File.basename(path)} is not installed: run bin/setup (it fetches Faye's browser client from npm)\n"]]
    end
  end
end
