# A very small test runner for the release checks: named checks that pass,
# fail (with a message) or are skipped, and one summary line at the end.
module ReleaseTest
  class Failure < StandardError; end
  class Skip < StandardError; end

  Result = Struct.new(:name, :status, :message)

  class Runner
    attr_reader :results

    def initialize
      @results = []
    end

    # Runs the block as one check. Failure and any other exception fail it;
    # Skip skips it.
    def check(name)
      yield
      record(name, :pass, nil)
    rescue Skip => e
      record(name, :skip, e.message)
    rescue Failure => e
      record(name, :fail, e.message)
    rescue StandardError, ScriptError => e
      where = e.class.name.start_with?('ReleaseTest::') ? '' : "\n    #{e.backtrace.first(3).join("\n    ")}"
      record(name, :fail, "#{e.class.name.sub('ReleaseTest::', '')}: #{e.message}#{where}")
    end

    def count(status)
      @results.count { |r| r.status == status }
    end

    def summary
      line = "#{count(:pass)} passed, #{count(:fail)} failed"
      skipped = count(:skip)
      skipped.positive? ? "#{line}, #{skipped} skipped" : line
    end

    private

    def record(name, status, message)
      @results << Result.new(name, status, message)
      label = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' }.fetch(status)
      puts "#{label}  #{name}"
      message.to_s.each_line { |l| puts "      #{l.chomp}" } if message && status != :pass
      $stdout.flush
    end
  end

  module Assertions
    def fail!(message)
      raise Failure, message
    end

    def skip!(message)
      raise Skip, message
    end

    def assert(condition, message)
      fail!(message) unless condition
    end

    def assert_equal(expected, actual, what)
      return if expected == actual

      fail!("#{what}: expected #{expected.inspect}, got #{actual.inspect}")
    end

    # Collects problems and fails once with all of them.
    def assert_no_problems(problems, what)
      return if problems.empty?

      fail!("#{what}:\n" + problems.map { |p| "- #{p}" }.join("\n"))
    end
  end
end
