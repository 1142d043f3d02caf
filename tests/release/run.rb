# Entry point of the release checks; see run.sh.
$stdout.sync = true
require 'tmpdir'
require 'fileutils'
require 'digest'
require_relative 'lib/harness'
require_relative 'test_release_lint'
require_relative 'test_ops_files'
require_relative 'test_templates'
require_relative 'test_deploying_doc'

repo = File.expand_path('../..', __dir__)
runner = ReleaseTest::Runner.new
keep = ENV['KEEP_RENDERED'].to_s != ''
out_dir = keep ? File.join(Dir.tmpdir, 'bosh-libvirt-cpi-rendered') : Dir.mktmpdir('bosh-libvirt-cpi-rendered')
FileUtils.mkdir_p(out_dir)

begin
  puts '--- release layout'
  ReleaseTest::ReleaseLint.new(repo, runner).run
  puts '--- ops files and example manifests'
  ReleaseTest::OpsFileTests.new(repo, runner).run
  puts "--- job templates (rendered into #{out_dir})"
  ReleaseTest::TemplateTests.new(repo, runner, out_dir).run
  puts '--- docs/deploying.md walked with the real bosh CLI'
  ReleaseTest::DeployingDocTests.new(repo, runner).run
ensure
  FileUtils.rm_rf(out_dir) unless keep
end

puts runner.summary
exit(runner.count(:fail).zero? ? 0 : 1)
