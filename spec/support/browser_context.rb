# frozen_string_literal: true

# A headless Chromium for an example group, and helpers to open pages of the
# fixture site (spec/fixtures/browser/room.html) that join `room` and
# `lesson` of the host group. Without Chromium the group is skipped, unless
# FAYE_ONLINE_TEST_BROWSER=required (bin/test sets it), which fails it.
RSpec.shared_context "a browser" do
  before(:all) do
    reason = FayeOnlineSpec::Browser.missing_reason
    if reason
      raise "the browser specs cannot run: #{reason}" if ENV["FAYE_ONLINE_TEST_BROWSER"] == "required"

      skip "the browser specs cannot run: #{reason}"
    end
    @browser = FayeOnlineSpec::Browser.start
  end

  after(:all) { @browser&.quit }

  after do |example|
    next unless example.exception && @browser

    @opened&.each do |name|
      warn "browser console of #{name}: #{@browser.console_log(name).inspect}"
    rescue FayeOnlineSpec::Browser::Error
      nil
    end
  end

  def room_url(user, browser: @browser, **extra)
    browser.page_url("room.html", faye: server_url, room: room, time: lesson,
                                  uid: user["uid"], uname: user["uname"], **extra)
  end

  # Opens a tab of `user` on the room page and waits until its client has
  # joined and subscribed to the room's user list. Returns its clientId.
  def open_tab(name, user, browser: @browser, **extra)
    open_page(name, user, browser: browser, **extra)
    wait_for(timeout: 10, message: "#{name} to join and subscribe") do
      probe = browser.eval(name, "probe")
      raise "#{name}: #{probe['errors'].inspect}" unless probe["errors"].empty?

      probe["ready"] && probe["client_ids"].last
    end
  end

  # Opens the room page without waiting for it to join.
  def open_page(name, user, browser: @browser, **extra)
    (@opened ||= []) << name
    browser.open(name, user: user["uname"], url: room_url(user, browser: browser, **extra))
  end

  def probe(name, browser: @browser)
    browser.eval(name, "probe")
  end

  # The last user list a tab received.
  def last_list(name)
    probe(name)["lists"].last || {}
  end
end
