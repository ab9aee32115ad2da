// Command sync pulls partner price files every night and stores them.
package main

import (
	"crypto/tls"
	"log"
	"net/http"
	"os"
	"path/filepath"
)

func main() {
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	for _, name := range os.Args[1:] {
		f, err := os.Create(filepath.Join("/var/lib/prices", filepath.Base(name)))
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		resp, err := client.Get("https://partner.example.com/prices/" + filepath.Base(name))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
}
