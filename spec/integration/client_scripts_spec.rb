# frozen_string_literal: true

require "net/http"

# The browser scripts the Faye server serves beside its endpoint.
RSpec.describe "Browser scripts", :integration do
  on_each_deployment(only: :any) do
    def get(path)
      uri = URI(server_url)
      Net::HTTP.get_response(URI("http://#{uri.host}:#{uri.port}#{path}"))
    end

    it "serves Faye's browser client and Faye.init_online_client as JavaScript" do
      faye = get("/faye-online/faye-browser-min.js")
      expect(faye.code).to eq "200"
      expect(faye["Content-Type"]).to start_with("application/javascript")
      expect(faye.body).to include("Faye")

      online = get("/faye-online/faye-online.js")
      expect(online.code).to eq "200"
      expect(online.body).to include("init_online_client")
    end

    it "answers 404 elsewhere, and Faye still serves its endpoint" do
      expect(get("/faye-online/../Gemfile").code).to eq "404"
      expect(get("/elsewhere").code).to eq "404"
      expect(bayeux_client.handshake!.client_id).to match(/\A[a-z0-9]+\z/)
    end
  end
end
