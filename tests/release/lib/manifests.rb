# bosh-deployment manifests built by the real bosh CLI: `bosh int` of the
# fixture bosh.yml with this repository's ops files, the operator's variables
# and a vars store, as an operator runs it before `bosh create-env`.
require 'yaml'
require 'digest'
require 'tmpdir'
require_relative 'bosh_cli'

module ReleaseTest
  module Manifests
    # Values an operator passes with -v for a create-env of this release. A
    # combination gets all of them; bosh --var-errs-unused says which it uses.
    OPERATOR_VARS = {
      'internal_ip' => '10.0.0.6',
      'internal_cidr' => '10.0.0.0/24',
      'internal_gw' => '10.0.0.1',
      'director_name' => 'bosh-libvirt',
      'libvirt_network' => 'bosh',
      'libvirt_storage_pool' => 'bosh',
      'libvirt_host' => '10.0.0.1',
      'libvirt_ssh_user' => 'bosh',
      'libvirt_known_hosts' => "10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyForTestsOnly0000000000000000000\n",
      'libvirt_cpi_release_version' => '0.1.0',
      'libvirt_cpi_release_url' => 'https://example.invalid/bosh-libvirt-cpi-0.1.0.tgz',
      'libvirt_cpi_release_sha1' => 'sha256:' + ('0' * 64),
      'libvirt_cpi_tarball' => '/tmp/bosh-libvirt-cpi.tgz',
    }.freeze

    # What `bosh int` made of one combination: the interpolated manifest, the
    # vars store it wrote, and the operator variables it used.
    Built = Struct.new(:manifest, :store, :used_vars)

    module_function

    def fixture_dir
      candidates = [
        ENV['BOSH_DEPLOYMENT_FIXTURE'],
        File.expand_path('../../../../shared/fixtures/bosh-deployment', __dir__),
        '/work/shared/fixtures/bosh-deployment',
      ].compact
      dir = candidates.find { |d| File.file?(File.join(d, 'bosh.yml')) }
      raise "bosh-deployment fixture not found (looked in #{candidates.join(', ')}); set BOSH_DEPLOYMENT_FIXTURE" unless dir

      dir
    end

    def load_yaml(path)
      YAML.safe_load(File.read(path), aliases: false)
    end

    # VARS as bosh int arguments: multi-line values go through --var-file (as
    # docs/deploying.md passes known_hosts), written into DIR.
    def cli_vars(vars, dir)
      plain = vars.reject { |_, v| v.to_s.include?("\n") }
      files = vars.select { |_, v| v.to_s.include?("\n") }.to_h do |name, value|
        file = File.join(dir, "var-#{name}")
        File.write(file, value)
        [name, file]
      end
      [plain, files]
    end

    # Generated values by variable name, shared by all combinations of one
    # run: bosh generates each certificate once and later runs reuse it.
    def store_cache
      @store_cache ||= {}
    end

    # `bosh int bosh.yml -o OPS_FILES... --vars-store S --var-errs
    # --var-errs-unused -v <the operator variables it uses>`, memoized. S
    # starts with the already generated values of the variables this
    # combination declares itself (nothing else, so a variable that only
    # another ops file declares still shows as missing). Raises Failure with
    # the variables that neither `variables:` nor the operator give.
    def build(ops_files)
      @built ||= {}
      @built[ops_files] ||= build_uncached(ops_files)
    end

    def build_uncached(ops_files)
      base = File.join(fixture_dir, 'bosh.yml')
      declared = (BoshCli.int!(base, ops: ops_files, path: '/variables') || []).map { |v| v['name'] }
      Dir.mktmpdir('bosh-int') do |tmp|
        store = File.join(tmp, 'creds.yml')
        seed = store_cache.slice(*declared)
        File.write(store, YAML.dump(seed)) unless seed.empty?
        plain, files = cli_vars(OPERATOR_VARS, tmp)
        args = { ops: ops_files, vars_store: store, var_errs: true, var_errs_unused: true }
        first = BoshCli.int(base, vars: plain, var_files: files, **args)
        unless first.missing.empty?
          raise Failure, "variables:\n" + first.missing.map { |v| "- ((#{v})) is neither in variables: nor supplied by the operator" }.join("\n")
        end
        raise Failure, first.describe unless first.success? || !first.unused.empty?

        used = OPERATOR_VARS.keys - first.unused
        result = first
        unless first.success?
          plain, files = cli_vars(OPERATOR_VARS.slice(*used), tmp)
          result = BoshCli.int(base, vars: plain, var_files: files, **args)
          raise Failure, result.describe unless result.success?
        end
        generated = load_yaml(store) || {}
        store_cache.merge!(generated)
        Built.new(YAML.safe_load(result.out, aliases: false), generated, used)
      end
    end

    def fake_pem(kind, seed)
      body = Digest::SHA256.hexdigest("#{kind}-#{seed}").scan(/.{1,32}/).join("\n")
      "-----BEGIN #{kind}-----\n#{body}\n-----END #{kind}-----\n"
    end

    def instance_group(document, name)
      (document['instance_groups'] || []).find { |g| g['name'] == name } or raise "no instance group #{name}"
    end

    # The properties a job gets on the director: its own block when it has
    # one (that replaces the group's), else the instance group's.
    def director_job_properties(document, job_name)
      group = instance_group(document, 'bosh')
      job = (group['jobs'] || []).find { |j| j['name'] == job_name } or raise "job #{job_name} is not in the bosh instance group"
      job.key?('properties') ? job['properties'] : (group['properties'] || {})
    end

    # The properties create-env renders the cloud_provider template with.
    def create_env_properties(document)
      document.dig('cloud_provider', 'properties') || {}
    end
  end
end
