package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
)

// runBroker serves three kfake brokers on 127.0.0.1, prints "BROKERS a,b,c" and
// serves until its standard input closes (the parent exited).
func runBroker() error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		return err
	}
	defer cluster.Close()
	fmt.Printf("BROKERS %s\n", strings.Join(cluster.ListenAddrs(), ","))
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// broker is the broker process seen from the parent.
type broker struct {
	addrs []string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startBroker() (*broker, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"=broker")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("broker printed no addresses: %w", err)
	}
	addrs, ok := strings.CutPrefix(strings.TrimSpace(line), "BROKERS ")
	if !ok {
		cmd.Process.Kill()
		return nil, fmt.Errorf("broker printed %q", line)
	}
	return &broker{addrs: strings.Split(addrs, ","), cmd: cmd, stdin: stdin}, nil
}

func (b *broker) stop() {
	b.stdin.Close()
	b.cmd.Wait()
}
