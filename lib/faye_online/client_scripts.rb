# frozen_string_literal: true

module FayeOnline
  # Serves the browser scripts beside the Faye endpoint, for pages that do
  # not use the Rails asset pipeline:
  #
  #   GET /faye-online/faye-browser-min.js   Faye's browser client
  #   GET /faye-online/faye-online.js        Faye.init_online_client
  #
  # Every other path answers 404, as a bare Faye server does.
  class ClientScripts
    ROOT = File.expand_path("../..", __dir__)
    FILES = {
      "/faye-online/faye-browser-min.js" => File.join(ROOT, "vendor/faye/faye-browser-min.js"),
      "/faye-online/faye-online.js" => File.join(ROOT, "app/assets/javascripts/faye-online.js")
    }.freeze

    def call(env)
      path = FILES[env["PATH_INFO"]]
      return not_found unless path && %w[GET HEAD].include?(env["REQUEST_METHOD"])
      return missing(path) unless File.file?(path)

      body = File.binread(path)
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
