# frozen_string_literal: true

require "faye"
require "faye_online/publish_guard"
require "faye_online/private_channels"

RSpec.describe FayeOnline::PublishGuard do
  it "matches channels as Faye's subscription patterns do" do
    {
      ["/broadcast/**", "/broadcast/news"] => true,
      ["/broadcast/**", "/broadcast/a/b"] => true,
      ["/broadcast/**", "/broadcast"] => false,
      ["/users/*/notifications", "/users/7/notifications"] => true,
      ["/users/*/notifications", "/users/7/notes"] => false,
      ["/users/*/notifications", "/users/7/notifications/x"] => false,
      ["/chat", "/chat"] => true,
      ["/chat", "/chat/1"] => false
    }.each do |(pattern, channel), expected|
      expect(described_class.match?(pattern, channel)).to be(expected), "#{pattern} ~ #{channel}"
    end
  end

  it "tells well-formed patterns from the rest" do
    expect(described_class.invalid(["/a/**", "/a/*/b", "/**", "/a"])).to eq []
    expect(described_class.invalid(["a", "/a/**/b", "/a b", "", nil, 3, "/a/"])).to eq ["a", "/a/**/b", "/a b", "", nil, 3, "/a/"]
  end

  it "takes the server token out of every message, and never raises" do
    guard = described_class.new(["/broadcast/**"], "t" * 32)
    message = { "channel" => "/chat/1", "data" => {}, "ext" => { "faye_online_server_token" => "t" * 32, "x" => 1 } }
    guard.check(message)
    expect(message).to eq("channel" => "/chat/1", "data" => {}, "ext" => { "x" => 1 })
    app = { "channel" => "/broadcast/news", "data" => {}, "ext" => { "faye_online_server_token" => "t" * 32 } }
    guard.check(app)
    expect(app).to eq("channel" => "/broadcast/news", "data" => {})
    [{ "channel" => nil }, { "channel" => 3, "ext" => "x" }, { "ext" => { "faye_online_server_token" => [] } }].each do |odd|
      expect { guard.check(odd) }.not_to raise_error
    end
  end
end

RSpec.describe FayeOnline::PrivateChannels do
  let(:secret) { "channels-secret-0123456789" }

  it "signs a token for one channel, one uid and one expiry" do
    token = described_class.token(secret, "/chats/1", 7, 2_000_000_000)
    expect(token).to match(/\A2000000000\.\h{64}\z/)
    expect(described_class.token(secret, "/chats/2", 7, 2_000_000_000)).not_to eq token
    expect(described_class.token(secret, "/chats/1", 8, 2_000_000_000)).not_to eq token
    expect(described_class.token("another-secret-0123456", "/chats/1", 7, 2_000_000_000)).not_to eq token
  end

  it "signs through FayeOnline.subscribe_token for a uid, a Hash or a record" do
    require "faye_online"
    record = Struct.new(:id).new(7)
    tokens = [7, { uid: 7 }, { "uid" => 7 }, record].map do |user|
      FayeOnline.subscribe_token("/chats/1", user: user, secret: secret)
    end
    tokens.each do |token|
      expect(token).to eq described_class.token(secret, "/chats/1", 7, token.split(".").first)
    end
    expect { FayeOnline.subscribe_token("/chats/1", user: "seven", secret: secret) }.to raise_error(ArgumentError)
  end
end
