package pg

import (
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// Account is the OS account PostgreSQL runs as for the data directory dataDir: this process's;
// run as root, whom PostgreSQL refuses, the owner of dataDir when it exists and is not root,
// else postgres, the account the packaged units run it as. An owner without an account entry
// is named by its uid ("uid 1234"). The error says the account cannot be told.
func Account(dataDir string) (*user.User, error) {
	uid := os.Geteuid()
	if uid == 0 && dataDir != "" {
		if fi, err := os.Stat(dataDir); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
				uid = int(st.Uid)
			}
		}
	}
	if uid == 0 {
		return user.Lookup("postgres")
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		if _, unknown := err.(user.UnknownUserIdError); unknown {
			return &user.User{Uid: strconv.Itoa(uid), Username: "uid " + strconv.Itoa(uid)}, nil
		}
		return nil, err
	}
	return u, nil
}
