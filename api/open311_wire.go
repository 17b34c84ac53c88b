package api

import (
	"encoding/xml"
	"time"
)

// The Open311 wire types: each is written as XML by its xml tags and as JSON by its json
// tags, the two carrying the same data (the Spark convention of the specification). Lists
// are o311List, whose items name their own XML element.

// Open311Discovery is the service discovery document (discovery.{format}).
type Open311Discovery struct {
	XMLName    xml.Name                  `xml:"discovery" json:"-"`
	Changeset  string                    `xml:"changeset" json:"changeset"`
	Contact    string                    `xml:"contact" json:"contact"`
	KeyService string                    `xml:"key_service" json:"key_service"`
	Endpoints  o311List[Open311Endpoint] `xml:"endpoints" json:"endpoints"`
}

// Open311Endpoint is one endpoint of the discovery document.
type Open311Endpoint struct {
	XMLName       xml.Name              `xml:"endpoint" json:"-"`
	Specification string                `xml:"specification" json:"specification"`
	URL           string                `xml:"url" json:"url"`
	Changeset     string                `xml:"changeset" json:"changeset"`
	Type          string                `xml:"type" json:"type"`
	Formats       o311List[open311Mime] `xml:"formats" json:"formats"`
}

// open311Mime is one format of an endpoint: <format>text/xml</format>, a string in JSON.
type open311Mime string

// MarshalXML names the element "format".
func (m open311Mime) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return e.EncodeElement(string(m), xml.StartElement{Name: xml.Name{Local: "format"}})
}

// Open311Service is one service (a category) of services.{format}.
type Open311Service struct {
	XMLName     xml.Name `xml:"service" json:"-"`
	ServiceCode string   `xml:"service_code" json:"service_code"`
	ServiceName string   `xml:"service_name" json:"service_name"`
	Description string   `xml:"description" json:"description"`
	Metadata    bool     `xml:"metadata" json:"metadata"`
	Type        string   `xml:"type" json:"type"`
	Keywords    string   `xml:"keywords" json:"keywords"`
	Group       string   `xml:"group" json:"group"`
}

// Open311ServiceDefinition is a service's questions (services/{service_code}.{format}).
type Open311ServiceDefinition struct {
	XMLName     xml.Name                   `xml:"service_definition" json:"-"`
	ServiceCode string                     `xml:"service_code" json:"service_code"`
	Attributes  o311List[Open311Attribute] `xml:"attributes" json:"attributes"`
}

// Open311Attribute is one question of a service definition.
type Open311Attribute struct {
	XMLName             xml.Name `xml:"attribute" json:"-"`
	Variable            bool     `xml:"variable" json:"variable"`
	Code                string   `xml:"code" json:"code"`
	Datatype            string   `xml:"datatype" json:"datatype"`
	Required            bool     `xml:"required" json:"required"`
	DatatypeDescription string   `xml:"datatype_description" json:"datatype_description"`
	Order               int      `xml:"order" json:"order"`
	Description         string   `xml:"description" json:"description"`
	// Values are the choices of a list question; other questions have none.
	Values *o311List[Open311AttributeValue] `xml:"values,omitempty" json:"values,omitempty"`
}

// Open311AttributeValue is one choice of a list question.
type Open311AttributeValue struct {
	XMLName xml.Name `xml:"value" json:"-"`
	Key     string   `xml:"key" json:"key"`
	Name    string   `xml:"name" json:"name"`
}

// Open311ServiceRequest is a request (a case) as requests.{format} and
// requests/{service_request_id}.{format} show it: the public view, never the reporter's
// details. Fields a case does not have are left out in both formats.
type Open311ServiceRequest struct {
	XMLName           xml.Name `xml:"request" json:"-"`
	ServiceRequestID  string   `xml:"service_request_id" json:"service_request_id"`
	Status            string   `xml:"status" json:"status"`
	StatusNotes       string   `xml:"status_notes,omitempty" json:"status_notes,omitempty"`
	ServiceName       string   `xml:"service_name" json:"service_name"`
	ServiceCode       string   `xml:"service_code" json:"service_code"`
	Description       string   `xml:"description" json:"description"`
	AgencyResponsible string   `xml:"agency_responsible,omitempty" json:"agency_responsible,omitempty"`
	RequestedDatetime string   `xml:"requested_datetime" json:"requested_datetime"`
	UpdatedDatetime   string   `xml:"updated_datetime" json:"updated_datetime"`
	ExpectedDatetime  string   `xml:"expected_datetime,omitempty" json:"expected_datetime,omitempty"`
	Address           string   `xml:"address,omitempty" json:"address,omitempty"`
	Lat               *float64 `xml:"lat,omitempty" json:"lat,omitempty"`
	Long              *float64 `xml:"long,omitempty" json:"long,omitempty"`
	MediaURL          string   `xml:"media_url,omitempty" json:"media_url,omitempty"`
}

// Open311Created answers POST requests.{format}: the new request's id, at once (every
// service is "realtime").
type Open311Created struct {
	XMLName          xml.Name `xml:"request" json:"-"`
	ServiceRequestID string   `xml:"service_request_id" json:"service_request_id"`
	ServiceNotice    string   `xml:"service_notice,omitempty" json:"service_notice,omitempty"`
}

// Open311Token answers tokens/{token}.{format}.
type Open311Token struct {
	XMLName          xml.Name `xml:"request" json:"-"`
	ServiceRequestID string   `xml:"service_request_id" json:"service_request_id"`
	Token            string   `xml:"token" json:"token"`
}

// Open311Update is one update of a request (mySociety's servicerequestupdates.{format}):
// a public event of its case's timeline.
type Open311Update struct {
	XMLName          xml.Name `xml:"request_update" json:"-"`
	UpdateID         string   `xml:"update_id" json:"update_id"`
	ServiceRequestID string   `xml:"service_request_id" json:"service_request_id"`
	// Status is mySociety's extended status; ExternalStatusCode is City Eyes' own.
	Status             string `xml:"status" json:"status"`
	ExternalStatusCode string `xml:"external_status_code" json:"external_status_code"`
	Description        string `xml:"description" json:"description"`
	UpdatedDatetime    string `xml:"updated_datetime" json:"updated_datetime"`
	MediaURL           string `xml:"media_url" json:"media_url"`
}

// Open311UpdateCreated answers POST servicerequestupdates.{format}.
type Open311UpdateCreated struct {
	XMLName  xml.Name `xml:"request_update" json:"-"`
	UpdateID string   `xml:"update_id" json:"update_id"`
}

// Open311KeyInfo is an Open311 client's API key as administrators see it: never the key.
type Open311KeyInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// Open311KeyRequest makes a key for a client.
type Open311KeyRequest struct {
	Name string `json:"name"`
}

// Open311KeyCreated is a new key, shown this once.
type Open311KeyCreated struct {
	Open311KeyInfo
	Key string `json:"key"`
}
