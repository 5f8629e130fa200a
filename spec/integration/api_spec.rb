# frozen_string_literal: true

require "net/http"

# The HTTP read API: a room's users and a lesson's running timers, behind a
# bearer token, for apps that cannot reach Redis.
RSpec.describe "The HTTP read API", :integration do
  token = "api-token-for-the-tests-0123"

  on_each_deployment(server: { api_token: token }) do |configuration|
    define_method(:api_token) { token }

    def api_get(path, token: api_token, method: Net::HTTP::Get)
      uri = URI("#{server.url.sub(%r{/faye\z}, '')}/faye-online/api/#{path}")
      request = method.new(uri)
      request["Authorization"] = "Bearer #{token}" if token
      Net::HTTP.start(uri.host, uri.port) { |http| http.request(request) }
    end

    it "answers a room's users and a lesson's running timers, with the token" do
      room = new_room
      lesson = new_lesson
      ann = new_user("ann")
      bob = new_user("bob")
      2.times { join(ann, room: room, lesson: lesson) }
      join(bob, room: room, lesson: lesson)

      response = nil
      eventually do
        response = api_get("rooms#{room}")
        expect(response.code).to eq "200"
        expect(JSON.parse(response.body)).to eq("room" => room, "count" => 2, "users" => [
                                                  { "uid" => ann["uid"], "uname" => "ann" },
                                                  { "uid" => bob["uid"], "uname" => "bob" }
                                                ].sort_by { |u| u["uid"] })
      end
      expect(response["Content-Type"]).to eq "application/json"
      expect(response.body).not_to match(/client/i)

      lesson_body = JSON.parse(api_get("lessons#{lesson}").body)
      expect(lesson_body).to include("lesson" => lesson, "count" => 2)
      ann_timer = lesson_body["users"].find { |u| u["uid"] == ann["uid"] }
      expect(ann_timer).to include("uname" => "ann", "tabs" => 2, "seconds" => a_value >= 0,
                                   "total_seconds" => a_value >= 0, "started_at" => a_string_ending_with("Z"))
      expect(JSON.parse(api_get("rooms/classes/nobody-here").body)).to eq("room" => "/classes/nobody-here",
                                                                           "count" => 0, "users" => [])
    end

    it "refuses requests without the token, or with bad paths, and answers only GET" do
      forbidden = api_get("rooms/classes/1", token: nil)
      expect(forbidden.code).to eq "403"
      expect(JSON.parse(forbidden.body)["error"]).to include("token")
      expect(api_get("rooms/classes/1", token: "#{api_token}x").code).to eq "403"
      expect(api_get("rooms/classes/1", token: "").code).to eq "403"
      expect(api_get("users/7").code).to eq "404"
      expect(api_get("rooms").code).to eq "400"
      expect(api_get("rooms/meta/connect").code).to eq "400"
      expect(api_get("rooms/classes/a%20b").code).to eq "400"
      expect(api_get("rooms/classes//4").code).to eq "400"
      expect(api_get("rooms/classes/1", method: Net::HTTP::Post).code).to eq "405"
      expect(server).to be_alive
    end
  end

  on_each_deployment(only: :any) do |configuration|
    it "is off without a token" do
      uri = URI("#{server.url.sub(%r{/faye\z}, '')}/faye-online/api/rooms/classes/1")
      expect(Net::HTTP.get_response(uri).code).to eq "404"
    end
  end
end
