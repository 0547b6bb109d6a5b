import { describe, expect, it } from 'vitest';
import { dockerRunCheck, parseDockerInfo, probeDocker } from '../../../../lab/guest/probes/docker.js';
import { fakeExec } from './fake-exec.js';

// docker 20.10 `docker info --format '{{json .}}'` (one line; trimmed of the plugin lists).
const INFO_UP =
  '{"ID":"4SQW:2XJD:K6GU:QZ4U:3GZL:V7ZP:6LRN:EMF2:RM4K:3YHD:UXQN:AWLX","Containers":2,"ContainersRunning":1,' +
  '"ContainersPaused":0,"ContainersStopped":1,"Images":1,"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],' +
  '["Supports d_type","true"],["Native Overlay Diff","true"],["userxattr","false"]],"MemoryLimit":true,"SwapLimit":true,' +
  '"CgroupDriver":"systemd","CgroupVersion":"2","NEventsListener":0,"KernelVersion":"6.1.0-56-cloud-amd64",' +
  '"OperatingSystem":"Debian GNU/Linux 12 (bookworm)","OSVersion":"12","OSType":"linux","Architecture":"x86_64",' +
  '"NCPU":1,"MemTotal":526422016,"DockerRootDir":"/var/lib/docker","Name":"node1","ServerVersion":"20.10.24+dfsg1",' +
  '"Runtimes":{"runc":{"path":"runc"}},"DefaultRuntime":"runc","Swarm":{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive",' +
  '"ControlAvailable":false,"Error":"","RemoteManagers":null},"LiveRestoreEnabled":false,"Isolation":"","InitBinary":"docker-init",' +
  '"ContainerdCommit":{"ID":"1.6.20~ds1-1+b1","Expected":"1.6.20~ds1-1+b1"},"RuncCommit":{"ID":"1.1.5+ds1-1+deb12u1","Expected":"1.1.5+ds1-1+deb12u1"},' +
  '"SecurityOptions":["name=seccomp,profile=default","name=cgroupns"],"Warnings":null,' +
  '"ClientInfo":{"Debug":false,"Context":"default","Plugins":[],"Warnings":null}}\n';

const INFO_DOWN =
  '{"ID":"","Containers":0,"ContainersRunning":0,"ContainersPaused":0,"ContainersStopped":0,"Images":0,"Driver":"",' +
  '"DriverStatus":null,"Plugins":{"Volume":null,"Network":null,"Authorization":null,"Log":null},"ServerVersion":"",' +
  '"Warnings":null,"ServerErrors":["Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"],' +
  '"ClientInfo":{"Debug":false,"Context":"default","Plugins":[],"Warnings":null}}\n';

const WHICH = 'sh -c command -v docker';
const INFO = 'sudo -n docker info --format {{json .}}';

describe('parseDockerInfo', () => {
  it('reads the server version and running containers', () => {
    expect(parseDockerInfo(INFO_UP)).toEqual({
      state: 'up',
      version: '20.10.24+dfsg1',
      containersRunning: 1,
    });
  });

  it('is down when docker reports ServerErrors', () => {
    expect(parseDockerInfo(INFO_DOWN)).toEqual({
      state: 'down',
      error:
        'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
    });
  });

  it.each(['', 'Segmentation fault\n', '{"ServerVersion":'])(
    'is down on output it cannot read: %j',
    (out) => {
      expect(parseDockerInfo(out).state).toBe('down');
    },
  );
});

describe('probeDocker', () => {
  it('is absent without a docker binary, and asks nothing else', async () => {
    const exec = fakeExec({ [WHICH]: { code: 1 } });
    expect(await probeDocker(exec)).toEqual({ state: 'absent' });
    expect(exec.calls).toEqual([['sh', '-c', 'command -v docker']]);
  });

  it('asks docker info through sudo -n', async () => {
    const exec = fakeExec({ [WHICH]: { stdout: '/usr/bin/docker\n' }, [INFO]: { stdout: INFO_UP } });
    expect(await probeDocker(exec)).toMatchObject({ state: 'up', version: '20.10.24+dfsg1' });
    expect(exec.calls[1]).toEqual(['sudo', '-n', 'docker', 'info', '--format', '{{json .}}']);
  });

  it('is down with the daemon stopped or sudo refusing', async () => {
    expect(
      await probeDocker(
        fakeExec({ [WHICH]: { stdout: '/usr/bin/docker\n' }, [INFO]: { stdout: INFO_DOWN, code: 1 } }),
      ),
    ).toMatchObject({
      state: 'down',
      error: expect.stringMatching(/^Cannot connect to the Docker daemon/) as unknown,
    });
    expect(
      await probeDocker(
        fakeExec({
          [WHICH]: { stdout: '/usr/bin/docker\n' },
          [INFO]: { stderr: 'sudo: a password is required\n', code: 1 },
        }),
      ),
    ).toEqual({ state: 'down', error: 'exit code 1: sudo: a password is required' });
  });
});

describe('dockerRunCheck', () => {
  const INSPECT = 'sudo -n docker image inspect --format {{.Id}} lab/busybox:local';
  const IMPORT = 'sudo -n docker import /var/lib/lab/busybox-rootfs.tar lab/busybox:local';
  const RUN = 'sudo -n docker run --rm lab/busybox:local echo lab-docker-ok';

  it('imports the tarball once, then runs a container', async () => {
    const exec = fakeExec({
      [INSPECT]: { code: 1, stderr: 'Error: No such image: lab/busybox:local\n' },
      [IMPORT]: { stdout: 'sha256:5f2e6d3c\n' },
      [RUN]: { stdout: 'lab-docker-ok\n' },
    });
    expect(await dockerRunCheck(exec, '/var/lib/lab/busybox-rootfs.tar')).toEqual({
      ok: true,
      imported: true,
      detail: 'lab/busybox:local printed lab-docker-ok',
    });
    expect(exec.calls.map((c) => c.join(' '))).toEqual([INSPECT, IMPORT, RUN]);
  });

  it('skips the import when the image is there', async () => {
    const exec = fakeExec({
      [INSPECT]: { stdout: 'sha256:5f2e6d3c\n' },
      [RUN]: { stdout: 'lab-docker-ok\n' },
    });
    expect(await dockerRunCheck(exec, '/var/lib/lab/busybox-rootfs.tar')).toMatchObject({
      ok: true,
      imported: false,
    });
    expect(exec.calls).toHaveLength(2);
  });

  it('says why a run failed', async () => {
    const exec = fakeExec({
      [INSPECT]: { stdout: 'sha256:5f2e6d3c\n' },
      [RUN]: {
        code: 125,
        stderr:
          'docker: Error response from daemon: AppArmor enabled on system but the docker-default profile could not be loaded: ' +
          'running `apparmor_parser apparmor_parser --version` failed with output: \n',
      },
    });
    const r = await dockerRunCheck(exec, '/tmp/bb.tar');
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/^docker run: exit code 125: docker: Error response from daemon: AppArmor/);
  });

  it('fails when the container prints something else', async () => {
    const exec = fakeExec({ [INSPECT]: {}, [RUN]: { stdout: 'hello\n' } });
    expect(await dockerRunCheck(exec, '/tmp/bb.tar')).toMatchObject({
      ok: false,
      detail: 'docker run printed "hello", not lab-docker-ok',
    });
  });
});
