# Renders the libvirt_cpi job's templates for the property sets create-env and
# the director would use, checks the output, and (with CPI_BIN) feeds every
# rendered cpi.json and every config/*.json example to the real binary.
require 'json'
require 'open3'
require 'tmpdir'
require 'fileutils'
require_relative 'lib/job_renderer'
require_relative 'lib/manifests'
require_relative 'lib/cpi_schema'

module ReleaseTest
  class TemplateTests
    include Assertions

    INFO_REQUEST = '{"method":"info","arguments":[],"context":{"director_uuid":"x"},"api_version":1}'.freeze
    # Helpers both BOSH renderers offer; anything else fails in one of them.
    FORBIDDEN = {
      /\.shellescape\b/ => 'String#shellescape (not loaded by the create-env renderer)',
      /\belse_if_p\b/ => 'else_if_p (misfires with defaulted properties)',
      /\blink\(|\bif_link\b/ => 'links (create-env has none)',
      /\.(blank|present)\?/ => 'ActiveSupport (director only)',
    }.freeze

    def initialize(repo, runner, out_dir)
      @repo = repo
      @runner = runner
      @out_dir = out_dir
      @job = JobRenderer.new(File.join(repo, 'jobs', 'libvirt_cpi'))
      @rendered = {} # case name => rendered job dir
    end

    def run
      check_template_sources
      check_spec_mirrors_schema
      property_sets = {}
      @runner.check('property sets for the templates build from bosh.yml and the ops files') { property_sets = cases }
      property_sets.each { |name, props| render_case(name, props) }
      check_missing_mbus
      check_examples
      check_cpi_binary
    end

    private

    # bosh.yml with OPS applied and interpolated by the real `bosh int`.
    def built(ops)
      Manifests.build(ops.map { |o| File.join(@repo, 'manifests', o) })
    end

    # name => {properties:, expect: {dotted path in cpi.json => value}}
    def cases
      builds = { tls: %w[cpi.yml tls.yml], ssh: %w[cpi.yml ssh.yml], tcp: %w[cpi.yml tcp.yml],
                 local: %w[cpi.yml tls.yml unix-socket.yml] }.transform_values { |ops| built(ops) }
      tls, ssh, tcp, local = builds.values_at(:tls, :ssh, :tcp, :local).map(&:manifest)
      # bosh.yml's create-env agent URL with the password from the vars store.
      mbus = ->(key) { "https://mbus:#{builds[key].store.fetch('mbus_bootstrap_password')}@0.0.0.0:6868" }
      {
        'create-env (tls + unix-socket)' => {
          properties: Manifests.create_env_properties(local),
          expect: { 'agent.mbus' => mbus.call(:local), 'libvirt.uri' => 'qemu:///system', 'libvirt.storage_pool' => 'bosh',
                    'libvirt.network' => 'bosh', 'libvirt.tls.ca_cert' => 'tls/cacert.pem' },
        },
        'create-env (tls)' => {
          properties: Manifests.create_env_properties(tls),
          expect: { 'agent.mbus' => mbus.call(:tls), 'libvirt.transport' => 'tls', 'libvirt.host' => '10.0.0.1',
                    'libvirt.tls.client_key' => 'tls/clientkey.pem', 'libvirt.uri' => nil },
        },
        'director (tls)' => {
          properties: Manifests.director_job_properties(tls, 'libvirt_cpi'),
          expect: { 'agent.mbus' => 'nats://10.0.0.6:4222', 'libvirt.transport' => 'tls',
                    'libvirt.tls.client_cert' => 'tls/clientcert.pem', 'libvirt.ssh' => nil, 'log_level' => 'info' },
        },
        'director (ssh)' => {
          properties: Manifests.director_job_properties(ssh, 'libvirt_cpi'),
          expect: { 'agent.mbus' => 'nats://10.0.0.6:4222', 'libvirt.transport' => 'ssh', 'libvirt.username' => 'bosh',
                    'libvirt.ssh.private_key' => 'ssh/id_key', 'libvirt.ssh.known_hosts' => 'ssh/known_hosts',
                    'libvirt.tls' => nil },
        },
        'create-env (ssh)' => {
          properties: Manifests.create_env_properties(ssh),
          expect: { 'agent.mbus' => mbus.call(:ssh), 'libvirt.transport' => 'ssh', 'libvirt.ssh.known_hosts' => 'ssh/known_hosts' },
        },
        'director (tcp)' => {
          properties: Manifests.director_job_properties(tcp, 'libvirt_cpi'),
          expect: { 'agent.mbus' => 'nats://10.0.0.6:4222', 'libvirt.transport' => 'tcp', 'libvirt.tls' => nil },
        },
        'spec defaults + mbus only' => {
          properties: { 'agent' => { 'mbus' => 'nats://10.0.0.6:4222' } },
          expect: { 'libvirt.uri' => nil, 'libvirt.hypervisor' => 'qemu', 'libvirt.transport' => 'unix',
                    'libvirt.storage_pool' => 'bosh', 'libvirt.auto_enable_networks' => false,
                    'libvirt.port' => nil, 'agent.ntp' => [], 'agent.blobstore' => nil },
        },
        'every property set' => {
          properties: {
            'agent' => { 'mbus' => 'nats://10.0.0.6:4222', 'blobstore' => { 'provider' => 'local', 'options' => {} } },
            'ntp' => ['0.pool.ntp.org'], 'log_level' => 'debug',
            'libvirt' => {
              'hypervisor' => 'kvm', 'uri' => 'qemu+ssh://bosh@10.0.0.1/system', 'transport' => 'ssh',
              'host' => '10.0.0.1', 'port' => 2222, 'username' => 'bosh', 'socket' => '/run/libvirt/libvirt-sock',
              'tls' => { 'ca_cert' => Manifests.fake_pem('CERTIFICATE', 'a'), 'client_cert' => Manifests.fake_pem('CERTIFICATE', 'b'),
                         'client_key' => Manifests.fake_pem('RSA PRIVATE KEY', 'c') },
              'ssh' => { 'private_key' => Manifests.fake_pem('OPENSSH PRIVATE KEY', 'd'), 'known_hosts' => '10.0.0.1 ssh-ed25519 AAAA' },
              'storage_pool' => 'pool', 'store_dir' => '/srv/bosh', 'network' => 'net', 'auto_enable_networks' => true,
              'storage_controller' => 'scsi', 'domain_type' => 'qemu', 'machine' => 'q35', 'name_prefix' => 'd1-',
            },
          },
          expect: { 'libvirt.port' => 2222, 'agent.blobstore.provider' => 'local', 'agent.ntp' => ['0.pool.ntp.org'],
                    'log_level' => 'debug', 'libvirt.machine' => 'q35', 'libvirt.name_prefix' => 'd1-' },
        },
      }
    end

    def check_template_sources
      @runner.check('templates use only helpers both BOSH renderers have') do
        problems = Dir[File.join(@job.job_dir, 'templates', '*')].sort.flat_map do |file|
          text = File.read(file)
          FORBIDDEN.filter_map { |re, why| "#{File.basename(file)}: #{why}" if text =~ re }
        end
        assert_no_problems(problems, 'forbidden template helpers')
      end
    end

    def check_spec_mirrors_schema
      @runner.check('job spec declares every libvirt config key, agent.mbus, agent.blobstore, ntp, log_level') do
        declared = (@job.spec['properties'] || {}).keys
        wanted = CpiSchema::LIBVIRT_KEYS.flat_map do |key, schema|
          next [] if key == 'private_key' # alias of ssh.private_key, config-file only

          schema[:type] == :object ? schema[:keys].keys.map { |k| "libvirt.#{key}.#{k}" } : ["libvirt.#{key}"]
        end + %w[agent.mbus agent.blobstore ntp log_level]
        assert_no_problems((wanted - declared).map { |k| "missing #{k}" } +
                           (@job.spec['properties'] || {}).reject { |_, d| d.is_a?(Hash) && d['description'] }.keys.map { |k| "#{k} has no description" },
                           'job spec properties')
      end
    end

    def render_case(name, test_case)
      dir = File.join(@out_dir, slug(name), 'jobs', 'libvirt_cpi')
      @runner.check("render #{name}") do
        FileUtils.rm_rf(dir)
        @job.render_all(test_case[:properties], dir)
        config = JSON.parse(File.read(File.join(dir, 'config', 'cpi.json')))
        assert_no_problems(CpiSchema.problems(config), 'rendered cpi.json does not fit the CPI config schema')
        test_case[:expect].each do |path, value|
          assert_equal(value, ReleaseTest.dig_path(config, path), "cpi.json #{path}")
        end
        # Every key file cpi.json names exists next to it and holds the property's text.
        CpiSchema.material_paths(config).each do |rel|
          file = File.join(dir, 'config', rel)
          assert(File.file?(file) && !File.read(file).strip.empty?, "cpi.json names #{rel}, but #{file} is missing or empty")
        end
        check_key_files(dir, test_case[:properties], config)
        check_wrapper(File.join(dir, 'bin', 'cpi'))
        @rendered[name] = dir
      end
    end

    def check_key_files(dir, properties, config)
      {
        'tls/cacert.pem' => 'libvirt.tls.ca_cert', 'tls/clientcert.pem' => 'libvirt.tls.client_cert',
        'tls/clientkey.pem' => 'libvirt.tls.client_key', 'ssh/id_key' => 'libvirt.ssh.private_key',
        'ssh/known_hosts' => 'libvirt.ssh.known_hosts'
      }.each do |rel, property|
        value = ReleaseTest.dig_path(properties, property).to_s
        text = File.read(File.join(dir, 'config', rel))
        if value.strip.empty?
          assert(!CpiSchema.material_paths(config).include?(rel), "#{property} is empty but cpi.json names #{rel}")
        else
          assert_equal(value.rstrip + "\n", text, "config/#{rel}")
        end
      end
    end

    def check_wrapper(path)
      text = File.read(path)
      assert(text.start_with?('#!/usr/bin/env bash') || text.start_with?('#!/bin/bash'), 'bin/cpi must start with a bash shebang')
      assert(File.executable?(path), 'bin/cpi must be executable')
      _out, err, status = Open3.capture3('bash', '-n', path)
      assert(status.success?, "bash -n bin/cpi: #{err}")
      [
        'BOSH_PACKAGES_DIR=${BOSH_PACKAGES_DIR:-/var/vcap/packages}',
        'BOSH_JOBS_DIR=${BOSH_JOBS_DIR:-/var/vcap/jobs}',
        'export LD_LIBRARY_PATH="${BOSH_PACKAGES_DIR}/libvirt-client/lib',
        'exec "${BOSH_PACKAGES_DIR}/libvirt_cpi/bin/cpi" --config "${BOSH_JOBS_DIR}/libvirt_cpi/config/cpi.json"',
      ].each { |line| assert(text.include?(line), "bin/cpi lacks: #{line}") }
    end

    def check_missing_mbus
      @runner.check('cpi.json.erb raises when the required agent.mbus is missing') do
        begin
          @job.render_template('cpi.json.erb', { 'libvirt' => { 'uri' => 'qemu:///system' } })
        rescue UnknownProperty => e
          assert(e.message.include?('agent.mbus'), "unexpected error: #{e.message}")
          next
        end
        fail!('rendering without agent.mbus succeeded')
      end
    end

    # The example configs fit the schema even without the binary.
    def check_examples
      Dir[File.join(@repo, 'examples', 'cpi-*.json')].sort.each do |file|
        @runner.check("config/#{File.basename(file)} fits the CPI config schema") do
          config = JSON.parse(File.read(file))
          assert_no_problems(CpiSchema.problems(config), File.basename(file))
          CpiSchema.material_paths(config).each do |rel|
            assert(!rel.start_with?('/'), "#{rel}: example key files are named relative to the config file")
          end
        end
      end
      @runner.check('examples/cpi-test.json is the test-driver config') do
        expected = { 'libvirt' => { 'uri' => 'test:///default', 'storage_pool' => 'default-pool', 'network' => 'default' },
                     'agent' => { 'mbus' => 'https://mbus:mbus-password@0.0.0.0:6868' } }
        assert_equal(expected, JSON.parse(File.read(File.join(@repo, 'examples', 'cpi-test.json'))), 'cpi-test.json')
      end
    end

    def slug(name)
      name.downcase.gsub(/[^a-z0-9]+/, '-').gsub(/\A-|-\z/, '')
    end

    def cpi_bin
      value = ENV['CPI_BIN'].to_s
      value.empty? ? nil : File.expand_path(value)
    end

    def run_cpi(argv, env = {})
      out, err, status = Open3.capture3(env, *argv, stdin_data: INFO_REQUEST)
      fail!("#{argv.join(' ')} exited #{status.exitstatus}; stderr: #{err.lines.last(5).join}") unless status.success?
      begin
        response = JSON.parse(out)
      rescue JSON::ParserError
        fail!("stdout is not JSON: #{out[0, 300].inspect}; stderr: #{err.lines.last(5).join}")
      end
      assert(response.is_a?(Hash) && response.key?('error') && response['error'].nil?,
             "expected \"error\":null, got #{out.strip[0, 400]}")
      assert(response['result'].is_a?(Hash) && response['result']['api_version'].is_a?(Integer),
             "info result lacks api_version: #{out.strip[0, 300]}")
    end

    def check_cpi_binary
      configs = @rendered.map { |name, dir| ["rendered #{name}", File.join(dir, 'config', 'cpi.json')] } +
                Dir[File.join(@repo, 'examples', 'cpi-*.json')].sort.map { |f| ["examples/#{File.basename(f)}", f] }
      bin = cpi_bin
      if bin.nil?
        @runner.check('CPI binary accepts the configs') { skip!('CPI_BIN is not set: the binary checks are skipped (CPI_BIN=build/cpi tests/release/run.sh)') }
        return
      end
      unless File.executable?(bin)
        @runner.check('CPI binary accepts the configs') { fail!("CPI_BIN=#{bin} is not an executable file") }
        return
      end
      configs.each do |label, file|
        @runner.check("cpi --config #{label} answers info with error null") do
          run_cpi([bin, '--config', file])
        end
      end
      check_wrapper_runs(bin)
    end

    # The rendered bin/cpi itself, with create-env's BOSH_*_DIR pointing at a
    # fake installation whose libvirt_cpi package holds CPI_BIN.
    def check_wrapper_runs(bin)
      name, dir = @rendered.first
      return unless dir

      @runner.check("rendered bin/cpi (#{name}) runs the binary") do
        Dir.mktmpdir('cpi-install') do |install|
          FileUtils.mkdir_p(File.join(install, 'packages', 'libvirt_cpi', 'bin'))
          FileUtils.mkdir_p(File.join(install, 'packages', 'libvirt-client', 'lib'))
          FileUtils.ln_s(bin, File.join(install, 'packages', 'libvirt_cpi', 'bin', 'cpi'))
          FileUtils.mkdir_p(File.join(install, 'jobs'))
          FileUtils.cp_r(dir, File.join(install, 'jobs', 'libvirt_cpi'))
          env = { 'BOSH_PACKAGES_DIR' => File.join(install, 'packages'), 'BOSH_JOBS_DIR' => File.join(install, 'jobs') }
          run_cpi([File.join(install, 'jobs', 'libvirt_cpi', 'bin', 'cpi')], env)
        end
      end
    end
  end
end
