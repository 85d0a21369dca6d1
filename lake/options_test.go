package lake

import "testing"

func TestS3Options(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, tt := range []struct {
		name string
		cfg  Config
		path bool
		base string
	}{
		{"AWS, virtual-hosted", Config{Region: "eu-west-1", AccessKeyID: "k", SecretAccessKey: "s"}, false, ""},
		{"MinIO, path-style", Config{Endpoint: "https://minio.internal:9000", AccessKeyID: "k", SecretAccessKey: "s", PathStyle: true}, true, "https://minio.internal:9000"},
		{"endpoint, virtual-hosted", Config{Endpoint: "https://s3.example.com", AccessKeyID: "k", SecretAccessKey: "s"}, false, "https://s3.example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := s3Options(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			base := ""
			if o.BaseEndpoint != nil {
				base = *o.BaseEndpoint
			}
			if o.UsePathStyle != tt.path || base != tt.base {
				t.Fatalf("UsePathStyle %v BaseEndpoint %q, want %v %q", o.UsePathStyle, base, tt.path, tt.base)
			}
			if o.Region == "" || o.Credentials == nil {
				t.Fatalf("region %q credentials %v", o.Region, o.Credentials)
			}
		})
	}
}
